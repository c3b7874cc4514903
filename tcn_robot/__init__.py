"""tcn-robot: Time-Contrastive Networks for robot imitation (Sermanet et al. 2017, arXiv:1704.06888)."""


# who does the task in a video (an episode's meta "embodiment"); human and robot demonstrations are what
# tcn.align_weight aligns
EMBODIMENTS = ("human", "robot", "unknown")

# the pipeline's held-out recordings (evaluation data and the demo to imitate) use this seed plus the run's seed
HELDOUT_SEED = 1000


class UserError(Exception):
    """A problem the user can fix (bad path, bad config, corrupt file): reported in one line, exit 2."""


def __getattr__(name: str):
    if name == "__version__":  # read on demand: importing the package (and starting the CLI) stays instant
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("tcn-robot")
        except PackageNotFoundError:  # running from a source tree without installing
            return "0+unknown"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
