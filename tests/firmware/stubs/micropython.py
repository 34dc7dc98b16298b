"""CPython stand-in for MicroPython's ``micropython`` module (firmware tests on the host)."""


def const(x):
    return x


def alloc_emergency_exception_buf(_n):
    return None


def schedule(func, arg):
    func(arg)
    return None


def heap_lock():
    """No-op on CPython (allocation checks run under real MicroPython only)."""
    return None


def heap_unlock():
    return 0
