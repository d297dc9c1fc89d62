"""A mapper from outside desim: of the candidates, the one that reads the FILTER the fewest times."""

from desim.components.compute.mappers import Mapper, Problem


class FilterFirst(Mapper):
    name = "filter-first"
    description = "the fewest FILTER bytes read, then the fewest bytes moved"

    def map(self, problem: Problem):
        return min(problem.candidates(), key=lambda m: (problem.traffic(m).filter_read, problem.cost(m)))
