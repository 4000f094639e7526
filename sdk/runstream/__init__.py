"""runstream: stream a training job's scalars, histograms and images to a runstream server.

import runstream
run = runstream.init(project="mnist", name="baseline", config={"lr": 3e-4})
run.log({"train/loss": 0.31}, step=120)
run.finish()
"""

from runstream._errors import AuthError, ForkedProcessError, RunFinishedError, RunstreamError, ServerUnavailableError
from runstream._run import Run, init
from runstream._sender import SendReport

__all__ = [
    "AuthError",
    "ForkedProcessError",
    "Run",
    "RunFinishedError",
    "RunstreamError",
    "SendReport",
    "ServerUnavailableError",
    "init",
]
__version__ = "0.1.0"
