from storage.box import Bin, Box, Crate, Shelf


def test_static():
    assert Box.volume(1, 2, 3) == 6
    assert Bin.volume(2, 2, 2) == 8


def test_class():
    assert Box.cube(2) == Box(2, 2, 2)
    assert type(Crate.cube(1)) is Crate


def test_property():
    assert Box(1, 2, 4).size == 8
    assert Crate(3, 1, 1).size == 3


def test_cached_property():
    box = Box(1, 2, 3)
    assert box.surface == 22
    assert box.surface == 22  # cached: one call
    assert Crate(1, 1, 1).surface == 6


def test_nested():
    slot = Shelf.Slot(3)
    assert slot.fits(Box(2, 1, 1))
    assert not slot.fits(Box(4, 1, 1))
