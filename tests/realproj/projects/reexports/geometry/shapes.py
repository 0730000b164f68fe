from . import core


class Rect:
    area_of = staticmethod(core.area)

    def __init__(self, width, height):
        self.width, self.height = width, height

    def size(self):
        return self.area_of(self.width, self.height)
