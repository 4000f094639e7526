"""runstream: stream a training job's scalars, histograms and images to a runstream server.

import runstream
run = runstream.init(project="mnist", name="baseline", config={"lr": 3e-4})
run.log({"train/loss": 0.31}, step=120)
run.finish()

In a notebook (pip install 'runstream[query]'): runstream.query("SELECT ...") -> pyarrow.Table,
runstream.runs(project=...) and runstream.history(run_id, tags) -> pandas.DataFrame.
"""

from runstream._errors import AuthError, ForkedProcessError, RunFinishedError, RunstreamError, ServerUnavailableError
from runstream._query import QueryError, history, query, runs
from runstream._run import Run, init
from runstream._sender import SendReport

__all__ = [
    "AuthError",
    "ForkedProcessError",
    "QueryError",
    "Run",
    "RunFinishedError",
    "RunstreamError",
    "SendReport",
    "ServerUnavailableError",
    "history",
    "init",
    "query",
    "runs",
]
__version__ = "0.1.0"
