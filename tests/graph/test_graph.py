"""Graph algorithms over nodes numbered ``0..n-1``, small graphs to 100,000-node chains."""

from __future__ import annotations

import gc
import sys

import pytest

from orchestrator.graph import cycle_in, gc_paused, strongly_connected, topological_order

CHAIN = 100_000


def chain(size: int) -> list[list[int]]:
    return [[i + 1] for i in range(size - 1)] + [[]]


def assert_topological(order: list[int], successors: list[list[int]]) -> None:
    place = {node: at for at, node in enumerate(order)}
    for source, targets in enumerate(successors):
        for target in targets:
            assert place[source] < place[target], (source, target)


def test_an_empty_graph_has_an_empty_order_and_no_cycles() -> None:
    assert topological_order([]) == []
    assert strongly_connected([]) == []


def test_every_edge_goes_forward_in_the_topological_order() -> None:
    successors = [[2, 3], [3], [4], [4], []]
    order = topological_order(successors)
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert_topological(order, successors)


def test_ready_nodes_come_lowest_number_first() -> None:
    assert topological_order([[3], [2], [], []]) == [0, 1, 2, 3]
    assert topological_order([[], [], []]) == [0, 1, 2]
    assert topological_order([[], [0], [1]]) == [2, 1, 0]


def test_the_order_does_not_depend_on_the_order_of_each_nodes_successors() -> None:
    assert topological_order([[1, 2, 3], [], [], []]) == [0, 1, 2, 3]
    assert topological_order([[3, 2, 1], [], [], []]) == [0, 1, 2, 3]


def test_parallel_edges_between_two_nodes_are_counted_once_each() -> None:
    assert topological_order([[1, 1], []]) == [0, 1]


def test_nodes_on_or_after_a_cycle_are_left_out_of_the_order() -> None:
    # 0 -> 1 -> 2 -> 1 (a cycle), 2 -> 3 downstream of it, 4 apart.
    order = topological_order([[1], [2], [1, 3], [], []])
    assert order == [0, 4]


def test_an_acyclic_graph_has_no_strongly_connected_components() -> None:
    assert strongly_connected([[1, 2], [2], []]) == []


def test_a_self_loop_is_a_component_of_one_node() -> None:
    assert strongly_connected([[0], []]) == [[0]]
    assert strongly_connected([[1], [1]]) == [[1]]


def test_each_cycle_is_one_component_with_its_members_sorted() -> None:
    # Two cycles, 0 <-> 1 and 2 -> 3 -> 4 -> 2, joined by the one-way edge 1 -> 2.
    successors = [[1], [0, 2], [3], [4], [2]]
    assert sorted(strongly_connected(successors)) == [[0, 1], [2, 3, 4]]


def test_a_component_holds_every_node_on_any_cycle_through_it() -> None:
    # Two cycles sharing node 0: 0 -> 1 -> 0 and 0 -> 2 -> 3 -> 0.
    assert strongly_connected([[1, 2], [0], [3], [0]]) == [[0, 1, 2, 3]]


def test_cycle_in_returns_a_closed_cycle_from_the_components_first_node() -> None:
    successors = [[1], [2], [0]]
    (component,) = strongly_connected(successors)
    assert cycle_in(component, successors) == [0, 1, 2, 0]


def test_cycle_in_takes_the_shortest_way_back() -> None:
    # 0 -> 1 -> 2 -> 3 -> 0 and the shortcut 1 -> 0.
    successors = [[1], [2, 0], [3], [0]]
    (component,) = strongly_connected(successors)
    assert cycle_in(component, successors) == [0, 1, 0]


def test_cycle_in_stays_inside_the_component() -> None:
    # 4 is reachable from the cycle but not part of it.
    successors = [[4, 1], [2], [0], [], []]
    (component,) = strongly_connected(successors)
    assert component == [0, 1, 2]
    assert cycle_in(component, successors) == [0, 1, 2, 0]


def test_cycle_in_a_self_loop_is_the_node_twice() -> None:
    assert cycle_in([3], [[], [], [], [3]]) == [3, 3]


def test_a_long_chain_is_ordered_without_recursion() -> None:
    assert sys.getrecursionlimit() < CHAIN
    assert topological_order(chain(CHAIN)) == list(range(CHAIN))
    assert strongly_connected(chain(CHAIN)) == []


def test_a_long_chain_closed_into_one_cycle_is_found_and_walked() -> None:
    successors = chain(CHAIN)
    successors[-1].append(0)
    assert topological_order(successors) == []
    (component,) = strongly_connected(successors)
    assert len(component) == CHAIN
    cycle = cycle_in(component, successors)
    assert cycle == [*range(CHAIN), 0]


def test_gc_paused_disables_the_collector_and_restores_it() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_gc_paused_restores_the_collector_after_an_error_and_leaves_it_off_if_it_was() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
