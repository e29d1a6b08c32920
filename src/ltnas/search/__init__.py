"""Search strategies: what one search step does. The shared loop (`ltnas.train.loop`) runs them."""

from ltnas.methods import method as entry
from ltnas.search.darts import DartsSearch
from ltnas.search.fairdarts import FairDartsSearch
from ltnas.search.gdas import GdasSearch
from ltnas.search.losses import barlow_twins_loss, zero_one_loss
from ltnas.search.pcdarts import PcDartsSearch
from ltnas.search.ssf import Projector, SsfSearch
from ltnas.search.schedules import SCHEDULES, hls_factor, mixing_ratio


def strategy_class(method: str):
    """The search strategy class of `method`, as its entry in the method table (ltnas.methods) names it."""
    return entry(method).strategy_class()


__all__ = [
    "DartsSearch", "FairDartsSearch", "GdasSearch", "PcDartsSearch", "Projector", "SCHEDULES", "SsfSearch",
    "barlow_twins_loss", "hls_factor", "mixing_ratio", "strategy_class", "zero_one_loss",
]
