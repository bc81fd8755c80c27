"""The GraphQL API (strawberry on starlette)."""
