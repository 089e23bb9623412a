"""Graph questions as the six graph tasks read them (``dmpo.npbench.tasks._graph``)."""

import pytest

from dmpo.errors import DmpoError
from dmpo.npbench.tasks._graph import compact_graph, parse_graph, vertex_mask


def test_adjacency_lists_and_dict_of_dicts_give_the_same_graph():
    lists = parse_graph({"0": [1], "1": [0, 2], "2": [1], "3": []}, "t")
    dicts = parse_graph({"0": {"1": 1}, "1": {"0": 1, "2": 1}, "2": {"1": 1}, "3": {}}, "t")
    assert lists == dicts
    assert lists.n == 4 and lists.edges == ((0, 1), (1, 2))
    assert lists.masks == (0b10, 0b101, 0b10, 0)


def test_integer_ids_and_one_sided_edges_count():
    graph = parse_graph({0: {1: 1}, 1: {}, 2: [0]}, "t")
    assert graph.edges == ((0, 1), (0, 2))


def test_zero_weight_is_no_edge():
    assert parse_graph({"0": {"1": 0}, "1": {"0": 0.0}}, "t").edges == ()


@pytest.mark.parametrize("question, match", [
    ({}, "non-empty JSON object"),
    ([[1], [0]], "non-empty JSON object"),
    ({"0": [1], "2": [0]}, "out of range"),
    ({"0": [1], "1": [0], "01": []}, "not a vertex id"),
    ({"0": [], 0: []}, "twice"),
    ({"a": [], "b": []}, "not a vertex id"),
    ({"0": [0]}, "self loop"),
    ({"0": [5], "1": []}, "out of range"),
    ({"0": [1.0], "1": []}, "not a vertex id"),
    ({"0": [True], "1": []}, "not a vertex id"),
    ({"0": "1", "1": []}, "list of ids or a dict"),
    ({"0": {"1": "yes"}, "1": {}}, "must be a number"),
    ({"0": {"1": True}, "1": {}}, "must be a number"),
])
def test_malformed_questions_say_what_is_wrong(question, match):
    with pytest.raises(DmpoError, match=match):
        parse_graph(question, "t")


def test_vertex_mask():
    assert vertex_mask([0, 2], 3) == (0b101, "")
    assert vertex_mask([], 3) == (0, "")
    assert vertex_mask([0, 0], 3)[1] == "vertex 0 repeated"
    assert "out of range" in vertex_mask([3], 3)[1]
    assert "out of range" in vertex_mask([-1], 3)[1]
    assert "not an integer" in vertex_mask([True], 3)[1]
    assert "not an integer" in vertex_mask([1.0], 3)[1]
    assert "not a list" in vertex_mask((0, 1), 3)[1]


def test_compact_graph():
    graph = parse_graph({"0": [1, 2], "1": [0], "2": [0], "3": []}, "t")
    assert compact_graph(graph) == "n 4\nedges 0-1 0-2"
