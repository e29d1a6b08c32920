"""The DARTS search space: operations, relaxations, the supernet, genotypes and discrete networks."""

from ltnas.space.genotype import CELL_TYPES, Edge, Genotype, derive_genotype, load_genotype, prune_cell, published_genotypes
from ltnas.space.network import DiscreteNetwork, count_parameters
from ltnas.space.primitives import OPS, PRIMITIVES
from ltnas.space.relaxation import RELAXATIONS, Relaxation, make_relaxation
from ltnas.space.search_network import SearchNetwork, num_edges

__all__ = [
    "CELL_TYPES", "Edge", "Genotype", "derive_genotype", "load_genotype", "prune_cell", "published_genotypes",
    "DiscreteNetwork", "count_parameters", "OPS", "PRIMITIVES", "RELAXATIONS", "Relaxation", "make_relaxation",
    "SearchNetwork", "num_edges",
]
