"""Register descriptions: the one source every register map is generated from.

A :class:`RegisterBlock` describes the registers of one core as software sees them: names, byte
offsets, widths, access types, reset values and documentation. The hardware decodes its
registers from this description, and :mod:`amnic.csr.export` renders the same description as a
Markdown reference, a C header and a Python dict for the driver model, so no copy of a register
map is ever kept by hand.

Conventions that hold for every block
-------------------------------------
* Offsets are **byte** offsets from the start of the block's window; every register is aligned
  to its width (4 bytes, or 8 bytes for 64-bit registers).
* Every block begins with a 12-byte header, so software can discover what the hardware
  contains by walking the address space:

  ====== ========= ===================================================================
  Offset Name      Contents
  ====== ========= ===================================================================
  0x00   type_id   what the block is (a four-character code, see :func:`fourcc`)
  0x04   version   register-map revision, ``major << 16 | minor`` (see :func:`version`)
  0x08   size      the size of the block's window in bytes, a power of two; the block
                   decodes ``offset & (size - 1)``, and the next block starts ``size``
                   bytes further when blocks are packed back to back
  ====== ========= ===================================================================

  Block registers start at 0x0C or later.
* A 64-bit register occupies two consecutive words, the low half at ``offset`` and the high
  half at ``offset + 4``. Reading the low word latches the high word into a holding register
  of the block; a read of any high word returns that holding register. Reading low then high
  therefore yields one coherent 64-bit value even while the register changes; reading only
  the high word returns the high half latched by the block's most recent low-word read.
* A read from an offset that no register occupies returns 0 with the bus error flag set.
"""

import enum
import keyword
import re
from dataclasses import dataclass, field

__all__ = [
    "Access", "Field", "Register", "RegisterBlock", "HEADER_SIZE", "fourcc", "version",
]

#: Bytes of the header that starts every block (type id, version, size).
HEADER_SIZE = 0x0C

_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*\Z")


class Access(enum.Enum):
    """How software may access a register.

    Read-to-clear (``RC``) exists for completeness; statistics use free-running counters that
    software differences instead, so two readers never disturb each other.
    """

    RO = "RO"  #: read only; writes are ignored
    RW = "RW"  #: read/write; reads return what was last written
    WO = "WO"  #: write only (a command); reads return 0
    W1C = "W1C"  #: read; writing 1 to a bit clears it, writing 0 leaves it
    W1S = "W1S"  #: read; writing 1 to a bit sets it (starts an action), writing 0 leaves it;
    #: the hardware clears the bit when the action is done
    RC = "RC"  #: read; a read returns the value and clears it


def fourcc(tag):
    """A block type id from a four-character ASCII tag, first character in bits 31:24.

    A register dump then shows the tag in reading order (``fourcc("MSTA") == 0x4D535441``).
    """
    raw = tag.encode("ascii")
    if len(raw) != 4:
        raise ValueError(f"a type tag has exactly four ASCII characters, not {tag!r}")
    return int.from_bytes(raw, "big")


def version(major, minor):
    """A 32-bit register-map version: ``major`` in bits 31:16, ``minor`` in bits 15:0.

    Software that knows major version *M* can drive any block of major version *M*; a new
    minor version only adds registers or fields.
    """
    if not (0 <= major < 1 << 16 and 0 <= minor < 1 << 16):
        raise ValueError(f"version {major}.{minor} does not fit 16+16 bits")
    return major << 16 | minor


def _check_name(kind, name):
    if not _IDENTIFIER.match(name) or keyword.iskeyword(name):
        raise ValueError(f"{kind} name {name!r} must be lower_snake_case starting with a letter")


@dataclass(frozen=True)
class Field:
    """A named bit field of a register.

    Parameters
    ----------
    name : str
        lower_snake_case name, unique within the register.
    offset : int
        Least significant bit.
    width : int
        Number of bits.
    doc : str
        What the field means and does.
    """

    name: str
    offset: int
    width: int
    doc: str

    def __post_init__(self):
        _check_name("field", self.name)
        if self.offset < 0 or self.width <= 0:
            raise ValueError(f"field {self.name!r} needs offset >= 0 and width > 0")

    @property
    def mask(self):
        """The field's bits in place (``((1 << width) - 1) << offset``)."""
        return ((1 << self.width) - 1) << self.offset


@dataclass(frozen=True)
class Register:
    """One software-visible register.

    Parameters
    ----------
    name : str
        lower_snake_case name, unique within the block.
    offset : int
        Byte offset within the block; a multiple of ``width // 8``.
    access : Access
        How software may access it.
    doc : str
        What the register holds, when it changes, and the spec clause it implements.
    width : int
        32, or 64 for a register that spans two words (see the module notes on reading them).
    init : int
        Value after reset.
    fields : tuple of Field
        Named bit fields, if the register is not one number.
    """

    name: str
    offset: int
    access: Access
    doc: str
    width: int = 32
    init: int = 0
    fields: tuple[Field, ...] = field(default=())

    def __post_init__(self):
        _check_name("register", self.name)
        if self.width not in (32, 64):
            raise ValueError(f"register {self.name!r}: width must be 32 or 64, not {self.width}")
        if self.offset < 0 or self.offset % (self.width // 8):
            raise ValueError(f"register {self.name!r}: offset {self.offset:#x} is not aligned "
                             f"to its {self.width // 8} bytes")
        if not 0 <= self.init < 1 << self.width:
            raise ValueError(f"register {self.name!r}: reset value {self.init:#x} does not fit")
        if not isinstance(self.access, Access):
            raise TypeError(f"register {self.name!r}: access must be an Access, "
                            f"not {self.access!r}")
        object.__setattr__(self, "fields", tuple(self.fields))
        used = 0
        names = set()
        for f in self.fields:
            if f.offset + f.width > self.width:
                raise ValueError(f"register {self.name!r}: field {f.name!r} exceeds the register")
            if used & f.mask:
                raise ValueError(f"register {self.name!r}: field {f.name!r} overlaps another")
            if f.name in names:
                raise ValueError(f"register {self.name!r}: duplicate field {f.name!r}")
            used |= f.mask
            names.add(f.name)

    @property
    def size(self):
        """Bytes the register occupies."""
        return self.width // 8

    @property
    def words(self):
        """The byte offsets of the register's words, low word first."""
        return tuple(self.offset + 4 * i for i in range(self.width // 32))


class RegisterBlock:
    """The registers of one core, headed by the standard type/version/size header.

    Parameters
    ----------
    name : str
        lower_snake_case name of the block (``mac_stats``); prefixes the generated C names.
    type_id : int
        32-bit type id, usually :func:`fourcc` of a tag.
    version : int
        32-bit register-map version, usually from :func:`version`.
    registers : iterable of Register
        The block's own registers, at offsets from :data:`HEADER_SIZE` on.
    doc : str
        What the block is and does.
    size : int or None
        Window size in bytes (a power of two). By default the smallest power of two that holds
        every register.

    Attributes
    ----------
    registers : tuple of Register
        Header and block registers, ordered by offset.
    """

    def __init__(self, name, type_id, version, registers, doc, size=None):
        _check_name("block", name)
        for what, value in (("type id", type_id), ("version", version)):
            if not 0 <= value < 1 << 32:
                raise ValueError(f"block {name!r}: {what} {value:#x} does not fit 32 bits")
        self.name = name
        self.type_id = type_id
        self.version = version
        self.doc = doc
        own = tuple(registers)
        end = max([HEADER_SIZE] + [r.offset + r.size for r in own])
        if size is None:
            size = 1 << (end - 1).bit_length()
        if size & (size - 1) or size < end:
            raise ValueError(f"block {name!r}: size {size:#x} is not a power of two that holds "
                             f"all registers (they end at {end:#x})")
        self.size = size
        header = (
            Register("type_id", 0x00, Access.RO, "Block type id: what this block is.",
                     init=type_id),
            Register("version", 0x04, Access.RO,
                     "Register-map version, major in bits 31:16, minor in bits 15:0.",
                     init=version),
            Register("size", 0x08, Access.RO,
                     "Size of this block's window in bytes (a power of two).", init=size),
        )
        for r in own:
            if r.offset < HEADER_SIZE:
                raise ValueError(f"block {name!r}: register {r.name!r} at {r.offset:#x} "
                                 f"overlaps the header")
        self.registers = tuple(sorted(header + own, key=lambda r: r.offset))
        self._by_name = {}
        self._by_word = {}
        for r in self.registers:
            if r.name in self._by_name:
                raise ValueError(f"block {name!r}: duplicate register name {r.name!r}")
            self._by_name[r.name] = r
            for half, word in enumerate(r.words):
                if word in self._by_word:
                    raise ValueError(f"block {name!r}: register {r.name!r} overlaps "
                                     f"{self._by_word[word][0].name!r} at {word:#x}")
                self._by_word[word] = (r, half)

    @property
    def addr_width(self):
        """Width of the byte address that covers the window (the block's register bus, see
        :mod:`amnic.csr.bus`)."""
        return (self.size - 1).bit_length()

    def __getitem__(self, name):
        """The register called ``name``."""
        return self._by_name[name]

    def __contains__(self, name):
        return name in self._by_name

    def __iter__(self):
        return iter(self.registers)

    def __len__(self):
        return len(self.registers)

    def word_at(self, offset):
        """``(register, half)`` of the word at byte ``offset`` (half 1 is a high word), or
        ``None`` where no register is."""
        return self._by_word.get(offset)

    def __repr__(self):
        return (f"RegisterBlock({self.name!r}, type_id={self.type_id:#010x}, "
                f"version={self.version:#010x}, {len(self.registers)} registers)")
