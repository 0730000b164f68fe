"""A list subclass that keeps its items in chunks of its own, not in the list's storage."""

from itertools import chain


class ChunkList(list):
    chunk_size = 4

    def __init__(self, iterable=None):
        self.chunks = [[]]
        if iterable:
            self.extend(iterable)

    def extend(self, iterable):
        self.chunks[-1].extend(iterable)
        self._split(len(self.chunks) - 1)

    def append(self, item):
        self.chunks[-1].append(item)
        self._split(len(self.chunks) - 1)

    def __iter__(self):
        return chain.from_iterable(self.chunks)

    def __len__(self):
        return sum(len(chunk) for chunk in self.chunks)

    def __repr__(self):
        return f"ChunkList({list(self)!r})"

    def _locate(self, index):
        if index < 0:
            index += len(self)
        for position, chunk in enumerate(self.chunks):
            if index <= len(chunk):
                return position, index
            index -= len(chunk)
        return len(self.chunks) - 1, len(self.chunks[-1])

    def _split(self, position):
        chunk = self.chunks[position]
        while len(chunk) > self.chunk_size:
            self.chunks.insert(position + 1, chunk[self.chunk_size :])
            del chunk[self.chunk_size :]
            position += 1
            chunk = self.chunks[position]

    def insert(self, index, item):
        position, offset = self._locate(index)
        self.chunks[position].insert(offset, item)
        self._split(position)
