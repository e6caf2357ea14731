"""The old name of `modules.infotext_utils`, which extensions still import."""

from modules.infotext_utils import *  # noqa: F403
from modules.infotext_utils import ParamBinding, parse_generation_parameters, quote, unquote  # noqa: F401
