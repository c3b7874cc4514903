"""tcn-robot: Time-Contrastive Networks for robot imitation (Sermanet et al. 2017, arXiv:1704.06888)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tcn-robot")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"


class UserError(Exception):
    """A problem the user can fix (bad path, bad config, corrupt file): reported in one line, exit 2."""
