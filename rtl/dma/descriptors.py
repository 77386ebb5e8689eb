"""Descriptors of the AMD UltraScale+ PCIe integrated block's AXI4-Stream user interface.

The hard IP (PG213, "UltraScale+ Devices Integrated Block for PCI Express", chapter "Designing
with the Core", sections on the Completer and Requester interfaces) does not carry raw TLP
headers on its four streams. Each TLP starts with a descriptor in the first DWORDs of the
stream, DWORD 0 in ``tdata[31:0]``, and the payload follows in the next DWORDs (DWORD-aligned
mode):

* CQ (completer request, hard IP -> user): :class:`CompleterRequest`, 4 DWORDs;
* CC (completer completion, user -> hard IP): :class:`CompleterCompletion`, 3 DWORDs;
* RQ (requester request, user -> hard IP): :class:`RequesterRequest`, 4 DWORDs;
* RC (requester completion, hard IP -> user): :class:`RequesterCompletion`, 3 DWORDs.

Layouts list fields from bit 0 up, so ``Layout.const({...}).as_value().value`` is the descriptor
as an integer whose low 32 bits are DWORD 0.
"""

from amaranth.lib import data, enum

__all__ = [
    "RequestType", "CompletionStatus", "CompletionError", "AddressType",
    "CompleterRequest", "CompleterCompletion", "RequesterRequest", "RequesterCompletion",
]


class RequestType(enum.Enum, shape=4):
    """Request type field of the CQ and RQ descriptors (PG213 "Request Type Encoding")."""

    MEM_READ = 0b0000
    MEM_WRITE = 0b0001
    IO_READ = 0b0010
    IO_WRITE = 0b0011
    MEM_FETCH_ADD = 0b0100
    MEM_SWAP = 0b0101
    MEM_CAS = 0b0110
    MEM_READ_LOCKED = 0b0111
    CFG_READ_0 = 0b1000
    CFG_READ_1 = 0b1001
    CFG_WRITE_0 = 0b1010
    CFG_WRITE_1 = 0b1011
    MESSAGE = 0b1100
    VENDOR_MESSAGE = 0b1101
    ATS_MESSAGE = 0b1110


class CompletionStatus(enum.Enum, shape=3):
    """Completion status (PCIe Base Specification 2.2.9)."""

    SUCCESSFUL = 0b000
    UNSUPPORTED_REQUEST = 0b001
    CONFIG_RETRY = 0b010
    COMPLETER_ABORT = 0b100


class CompletionError(enum.Enum, shape=4):
    """Error code of an RC descriptor: what the hard IP found wrong with a completion."""

    NORMAL = 0b0000
    POISONED = 0b0001
    BAD_STATUS = 0b0010  #: UR, CA or CRS status
    INVALID_LENGTH = 0b0011  #: byte count and DWORD count disagree
    MISMATCH = 0b0100  #: requester ID, TC or attributes differ from the request's
    INVALID_ADDRESS = 0b0101  #: the lower address is not where the data should continue
    INVALID_TAG = 0b0110  #: no request outstanding with that tag
    FUNCTION_RESET = 0b1000  #: the function was reset while the request was outstanding
    TIMEOUT = 0b1001  #: completion timeout (PCIe Base Specification 2.8)


class AddressType(enum.Enum, shape=2):
    """PCIe address type (Base Specification 2.2.4.1): untranslated, translation request,
    translated."""

    UNTRANSLATED = 0b00
    TRANSLATION_REQUEST = 0b01
    TRANSLATED = 0b10


class CompleterRequest(data.Struct):
    """CQ descriptor: a memory, I/O or atomic request from the host to a BAR (128 bits).

    ``address`` holds bits 63:2 of the byte address; ``dword_count`` the payload length in
    DWORDs (a write) or the requested length (a read). The first and last byte enables are in
    ``tuser``, not here.
    """

    address_type: AddressType
    address: 62
    dword_count: 11
    request_type: RequestType
    _reserved0: 1
    requester_id: 16
    tag: 8
    target_function: 8
    bar_id: 3
    bar_aperture: 6
    traffic_class: 3
    attributes: 3
    _reserved1: 1


class CompleterCompletion(data.Struct):
    """CC descriptor: the answer to a CQ request (96 bits).

    ``lower_address`` is bits 6:0 of the first byte's address, ``byte_count`` the bytes still
    to be returned for the request including this completion.
    """

    lower_address: 7
    _reserved0: 1
    address_type: AddressType
    _reserved1: 6
    byte_count: 13
    locked_read: 1
    _reserved2: 2
    dword_count: 11
    status: CompletionStatus
    poisoned: 1
    _reserved3: 1
    requester_id: 16
    tag: 8
    completer_id: 16
    completer_id_enable: 1
    traffic_class: 3
    attributes: 3
    force_ecrc: 1


class RequesterRequest(data.Struct):
    """RQ descriptor: a request from the user logic to the host (128 bits).

    For configuration requests ``address`` carries the register number in its low bits
    (byte address bits 11:2).
    """

    address_type: AddressType
    address: 62
    dword_count: 11
    request_type: RequestType
    poisoned: 1
    requester_id: 16
    tag: 8
    completer_id: 16
    requester_id_enable: 1
    traffic_class: 3
    attributes: 3
    force_ecrc: 1


class RequesterCompletion(data.Struct):
    """RC descriptor: a completion for one of the user logic's requests (96 bits).

    ``lower_address`` is bits 11:0 of the first byte's address; ``request_completed`` marks the
    last completion of its request (the tag is free again).
    """

    lower_address: 12
    error_code: CompletionError
    byte_count: 13
    locked_read: 1
    request_completed: 1
    _reserved0: 1
    dword_count: 11
    status: CompletionStatus
    poisoned: 1
    _reserved1: 1
    requester_id: 16
    tag: 8
    completer_id: 16
    _reserved2: 1
    traffic_class: 3
    attributes: 3
    _reserved3: 1
