"""kill -9 in the middle of a sync leaves the last committed state; the next sync completes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from cmdb.demo import DemoConnector
from cmdb.store import ChangeFilter, CIFilter, SqliteStore
from cmdb.sync import SyncEngine

WRITER = textwrap.dedent(
    """
    import sys
    from cmdb.demo import DemoConnector
    from cmdb.store import SqliteStore
    from cmdb.sync import SyncEngine

    store = SqliteStore(sys.argv[1])
    batches = 0

    def progress(scope, cis, rels):
        global batches
        batches += 1
        if batches == 6:
            print("mid-write", flush=True)
            sys.stdin.readline()  # wait here, inside the run's transaction, until killed

    SyncEngine(store).run(DemoConnector(size=int(sys.argv[2]), seed=3, day=1), progress=progress)
    print("finished", flush=True)
    """
)


def test_kill_9_mid_sync_keeps_last_committed_state(tmp_path: Path) -> None:
    path = tmp_path / "cmdb.db"
    store = SqliteStore(path)
    SyncEngine(store).run(DemoConnector(size=600, seed=3, day=0))
    committed = store.count_cis(CIFilter())
    committed_changes = len(list(store.iter_changes(ChangeFilter())))
    store.close()

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "3000"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "mid-write"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()

    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()
    reopened = SqliteStore(path)
    assert reopened.count_cis(CIFilter()) == committed
    assert len(list(reopened.iter_changes(ChangeFilter()))) == committed_changes
    assert [run.status for run in reopened.sync_runs()] == ["complete"]  # the killed run left nothing

    report = SyncEngine(reopened).run(DemoConnector(size=3000, seed=3, day=1))
    assert report.run.status == "complete"
    assert reopened.count_cis(CIFilter()) > committed
    reopened.close()
