"""Search strategies: what one search step does. The shared loop (`ltnas.train.loop`) runs them."""

from ltnas.errors import LtnasError
from ltnas.search.darts import DartsSearch

STRATEGIES = {"darts": DartsSearch}


def strategy_class(method: str):
    if method not in STRATEGIES:
        raise LtnasError(f"unknown search method '{method}'; choose from {', '.join(STRATEGIES)}")
    return STRATEGIES[method]


__all__ = ["DartsSearch", "STRATEGIES", "strategy_class"]
