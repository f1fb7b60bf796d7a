"""The ``__init__`` templates of :mod:`pylibbpf.records` for every record shape in this
package, compiled with it: a ``.pyc`` loads them for a fraction of what compiling them
costs each process (the records on the path of a first open and load are most of them).
A name is the shape (``records.template_source`` says how to read it).

Written by ``python tools/record_inits.py``; tests/test_records.py checks that it is
complete and what ``records.template_source`` gives. Do not edit.
"""

# ruff: noqa: F821, E501
# mypy: disable-error-code="name-defined,no-untyped-def"
# (``_set``, ``_specs`` and ``_FACTORY`` are the globals ``records`` gives each __init__)


def s_pp(self, f0, f1):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)


def n_ppp(self, f0, f1, f2):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2


def s_ppp(self, f0, f1, f2):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)


def s_pppf(self, f0, f1, f2, f3):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', _specs['f3'].default_factory() if f3 is _FACTORY else f3)


def s_pppp(self, f0, f1, f2, f3):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)


def n_ppppp(self, f0, f1, f2, f3, f4):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = f3
    self.f4 = f4


def s_ppppp(self, f0, f1, f2, f3, f4):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)


def n_pppfff(self, f0, f1, f2, f3, f4, f5):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = _specs['f3'].default_factory() if f3 is _FACTORY else f3
    self.f4 = _specs['f4'].default_factory() if f4 is _FACTORY else f4
    self.f5 = _specs['f5'].default_factory() if f5 is _FACTORY else f5


def n_pppppp(self, f0, f1, f2, f3, f4, f5):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = f3
    self.f4 = f4
    self.f5 = f5


def s_pppppp(self, f0, f1, f2, f3, f4, f5):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)


def n_pffffff(self, f0, f1, f2, f3, f4, f5, f6):
    self.f0 = f0
    self.f1 = _specs['f1'].default_factory() if f1 is _FACTORY else f1
    self.f2 = _specs['f2'].default_factory() if f2 is _FACTORY else f2
    self.f3 = _specs['f3'].default_factory() if f3 is _FACTORY else f3
    self.f4 = _specs['f4'].default_factory() if f4 is _FACTORY else f4
    self.f5 = _specs['f5'].default_factory() if f5 is _FACTORY else f5
    self.f6 = _specs['f6'].default_factory() if f6 is _FACTORY else f6


def s_ppppppp(self, f0, f1, f2, f3, f4, f5, f6):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)


def s_pppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)
    _set(self, 'f7', f7)


def n_pppppppfp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = f3
    self.f4 = f4
    self.f5 = f5
    self.f6 = f6
    self.f7 = _specs['f7'].default_factory() if f7 is _FACTORY else f7
    self.f8 = f8


def s_pppppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)
    _set(self, 'f7', f7)
    _set(self, 'f8', f8)
    _set(self, 'f9', f9)


def s_ppppppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)
    _set(self, 'f7', f7)
    _set(self, 'f8', f8)
    _set(self, 'f9', f9)
    _set(self, 'f10', f10)


def n_ppppppppppppfp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = f3
    self.f4 = f4
    self.f5 = f5
    self.f6 = f6
    self.f7 = f7
    self.f8 = f8
    self.f9 = f9
    self.f10 = f10
    self.f11 = f11
    self.f12 = _specs['f12'].default_factory() if f12 is _FACTORY else f12
    self.f13 = f13


def n_pppppppppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = f3
    self.f4 = f4
    self.f5 = f5
    self.f6 = f6
    self.f7 = f7
    self.f8 = f8
    self.f9 = f9
    self.f10 = f10
    self.f11 = f11
    self.f12 = f12
    self.f13 = f13


def s_ppppppppppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)
    _set(self, 'f7', f7)
    _set(self, 'f8', f8)
    _set(self, 'f9', f9)
    _set(self, 'f10', f10)
    _set(self, 'f11', f11)
    _set(self, 'f12', f12)
    _set(self, 'f13', f13)
    _set(self, 'f14', f14)


def n_ppppppppppppfffpp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16):
    self.f0 = f0
    self.f1 = f1
    self.f2 = f2
    self.f3 = f3
    self.f4 = f4
    self.f5 = f5
    self.f6 = f6
    self.f7 = f7
    self.f8 = f8
    self.f9 = f9
    self.f10 = f10
    self.f11 = f11
    self.f12 = _specs['f12'].default_factory() if f12 is _FACTORY else f12
    self.f13 = _specs['f13'].default_factory() if f13 is _FACTORY else f13
    self.f14 = _specs['f14'].default_factory() if f14 is _FACTORY else f14
    self.f15 = f15
    self.f16 = f16


def s_ppppppppppppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)
    _set(self, 'f7', f7)
    _set(self, 'f8', f8)
    _set(self, 'f9', f9)
    _set(self, 'f10', f10)
    _set(self, 'f11', f11)
    _set(self, 'f12', f12)
    _set(self, 'f13', f13)
    _set(self, 'f14', f14)
    _set(self, 'f15', f15)
    _set(self, 'f16', f16)


def s_ppppppppppppppppppp(self, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18):
    _set(self, 'f0', f0)
    _set(self, 'f1', f1)
    _set(self, 'f2', f2)
    _set(self, 'f3', f3)
    _set(self, 'f4', f4)
    _set(self, 'f5', f5)
    _set(self, 'f6', f6)
    _set(self, 'f7', f7)
    _set(self, 'f8', f8)
    _set(self, 'f9', f9)
    _set(self, 'f10', f10)
    _set(self, 'f11', f11)
    _set(self, 'f12', f12)
    _set(self, 'f13', f13)
    _set(self, 'f14', f14)
    _set(self, 'f15', f15)
    _set(self, 'f16', f16)
    _set(self, 'f17', f17)
    _set(self, 'f18', f18)


TEMPLATES = {
    "s_pp": s_pp.__code__,
    "n_ppp": n_ppp.__code__,
    "s_ppp": s_ppp.__code__,
    "s_pppf": s_pppf.__code__,
    "s_pppp": s_pppp.__code__,
    "n_ppppp": n_ppppp.__code__,
    "s_ppppp": s_ppppp.__code__,
    "n_pppfff": n_pppfff.__code__,
    "n_pppppp": n_pppppp.__code__,
    "s_pppppp": s_pppppp.__code__,
    "n_pffffff": n_pffffff.__code__,
    "s_ppppppp": s_ppppppp.__code__,
    "s_pppppppp": s_pppppppp.__code__,
    "n_pppppppfp": n_pppppppfp.__code__,
    "s_pppppppppp": s_pppppppppp.__code__,
    "s_ppppppppppp": s_ppppppppppp.__code__,
    "n_ppppppppppppfp": n_ppppppppppppfp.__code__,
    "n_pppppppppppppp": n_pppppppppppppp.__code__,
    "s_ppppppppppppppp": s_ppppppppppppppp.__code__,
    "n_ppppppppppppfffpp": n_ppppppppppppfffpp.__code__,
    "s_ppppppppppppppppp": s_ppppppppppppppppp.__code__,
    "s_ppppppppppppppppppp": s_ppppppppppppppppppp.__code__,
}
