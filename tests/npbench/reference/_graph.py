"""Plain reading of graph questions for the graph references: adjacency lists or dicts of
dicts (weight 0 = no edge), edges as a set of frozensets."""


def vertices(question: dict) -> list[int]:
    return sorted(int(k) for k in question)


def edge_set(question: dict) -> set[frozenset[int]]:
    edges = set()
    for key, row in question.items():
        if isinstance(row, dict):
            neighbours = [other for other, weight in row.items() if weight != 0]
        else:
            neighbours = list(row)
        for other in neighbours:
            edges.add(frozenset((int(key), int(other))))
    return edges


def is_id_list(answer: object, n: int) -> bool:
    """A list of distinct real ints in 0..n-1."""
    return (isinstance(answer, list)
            and all(type(v) is int and 0 <= v < n for v in answer)
            and len(set(answer)) == len(answer))
