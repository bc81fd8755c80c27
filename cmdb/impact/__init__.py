"""The impact module: pure functions over the store protocol or a networkx graph."""
