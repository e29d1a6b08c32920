"""Search strategies: what one search step does. The shared loop (`ltnas.train.loop`) runs them."""

from ltnas.errors import LtnasError
from ltnas.search.darts import DartsSearch
from ltnas.search.fairdarts import FairDartsSearch
from ltnas.search.gdas import GdasSearch
from ltnas.search.losses import barlow_twins_loss, zero_one_loss
from ltnas.search.pcdarts import PcDartsSearch
from ltnas.search.ssf import Projector, SsfSearch
from ltnas.search.schedules import SCHEDULES, hls_factor, mixing_ratio

STRATEGIES = {"darts": DartsSearch, "fairdarts": FairDartsSearch, "ssf": SsfSearch, "pcdarts": PcDartsSearch,
              "gdas": GdasSearch}


def strategy_class(method: str):
    if method not in STRATEGIES:
        raise LtnasError(f"unknown search method '{method}'; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[method]


__all__ = [
    "DartsSearch", "FairDartsSearch", "GdasSearch", "PcDartsSearch", "Projector", "SCHEDULES", "STRATEGIES", "SsfSearch", "barlow_twins_loss",
    "hls_factor", "mixing_ratio", "strategy_class", "zero_one_loss",
]
