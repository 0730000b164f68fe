from chunks.chunklist import ChunkList


def test_insert_front_and_middle():
    items = ChunkList(range(6))
    items.insert(0, "a")
    items.insert(3, "b")
    assert list(items) == ["a", 0, 1, "b", 2, 3, 4, 5]
    assert items.chunks == [["a", 0, 1, "b"], [2], [3], [4, 5]]


def test_insert_end_and_negative():
    items = ChunkList([1, 2])
    items.insert(2, 3)
    items.insert(-1, 9)
    assert list(items) == [1, 2, 9, 3]
