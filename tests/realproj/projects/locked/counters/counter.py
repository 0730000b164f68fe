import threading


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.value = 0

    def add(self, amount):
        with self.lock:
            self.value += amount
        return self.value
