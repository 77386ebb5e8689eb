"""Completion faults and completion reordering from cocotbext-pcie's root complex (cocotb).

The stock ``RootComplex`` answers every memory read request of a device at once, in arrival
order, with the largest completions Max_Payload_Size allows. :class:`CompletionFaults` takes
over its memory read handler (``rx_tlp_handler`` for ``MEM_READ`` and ``MEM_READ_64``) so a
test can make the host behave the way a requester has to cope with:

* **Reordering and splitting.** Completions of different requests leave in a random order, and
  each request is answered in several completions cut at Read Completion Boundary (RCB, 64 bytes)
  aligned addresses. Both stay inside the rules: completions with different transaction IDs may
  pass each other, completions of one request keep ascending address order (PCIe Base
  Specification 2.4.1, ordering rules summary entry D5), every completion but the last ends on
  an RCB-aligned address and none carries more than Max_Payload_Size (2.3.1.1).
* **Poisoned completions** (:attr:`Fault.POISONED`): one completion of the request has the EP
  bit set (2.7.2); its data and all the other completions are sent normally.
* **Error status** (:attr:`Fault.COMPLETER_ABORT`, :attr:`Fault.UNSUPPORTED_REQUEST`):
  successful completions up to a chosen one, then a completion without data carrying CA / UR
  status, which ends the request (2.2.9, 2.3.1); its Byte Count is set to the bytes still owed
  and its Lower Address to where they start.
* **No completion** (:attr:`Fault.DROPPED`): from a chosen completion on, nothing is sent, so
  the requester's completion timeout (2.8) has to end the request; or, with ``late_ns``, the
  rest is sent that much later, after the requester gave up.
* **Completion timeout reported by the hard IP** (:attr:`Fault.HARD_IP_TIMEOUT`): from a chosen
  completion on, nothing is sent, and the device model then reports the request's completion
  timeout on RC as the UltraScale+ integrated block does when its own completion timer runs
  out (PG213: a completion descriptor with error code 1001b, ``request_completed`` set).

Faults are chosen per request by rules (:meth:`CompletionFaults.inject`): a host address
range the request overlaps, or any callable on the request TLP, and how many requests the rule
takes. Every request served is recorded (:class:`ServedRead`), and requests that break the
requester rules (longer than Max_Read_Request_Size, crossing 4 KB, 2.2.7) are listed in
:attr:`CompletionFaults.violations`.

Memory is read when the request arrives (as a completer would, so writes the device posted
before the read are seen, 2.4.1), only the completions are held back. Requests for addresses
no region holds get Unsupported Request, a failing memory read Completer Abort, as with the
stock handler.

The UltraScale+ device model of cocotbext-pcie keeps a record of every outstanding tag and
refuses a new request on a tag still recorded; it has no completion timeout of its own. When
completions are dropped for good, :class:`CompletionFaults` (given the ``device``) clears that
record shortly after the last completion it did send for the request, as the hard IP's own
completion timeout would later, so the requester may reuse the tag after its timeout.
"""

import enum
import logging
import random
from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import Event, First, Timer
from cocotb.utils import get_sim_time
from cocotbext.pcie.core.tlp import CplStatus, Tlp, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.xilinx.us.tlp import ErrorCode, Tlp_us

__all__ = ["CompletionFaults", "Fault", "FaultRule", "ServedRead", "Split"]

#: Read Completion Boundary of a root complex in bytes (PCIe 2.3.1.1, 7.5.3.7).
RCB = 64
#: How long after the last completion sent for a dropped request the device model's record of
#: its tag is cleared (ns; well above the model's link latency).
FORGET_NS = 1000
_MEM_READS = (TlpType.MEM_READ, TlpType.MEM_READ_64)


class Fault(enum.Enum):
    """What goes wrong with the completions of one memory read request."""

    POISONED = "poisoned"
    COMPLETER_ABORT = "completer abort"
    UNSUPPORTED_REQUEST = "unsupported request"
    DROPPED = "dropped"
    HARD_IP_TIMEOUT = "hard IP completion timeout"


class Split(enum.Enum):
    """How a request's bytes are cut into completions (always at RCB-aligned addresses)."""

    LARGEST = "largest"  #: as few completions as Max_Payload_Size allows
    RCB = "rcb"  #: one completion per RCB-aligned block
    RANDOM = "random"  #: random RCB-aligned cuts, each completion within Max_Payload_Size


@dataclass
class ServedRead:
    """A memory read request as answered.

    Attributes
    ----------
    tag : int
    address : int
        Host address of the first byte requested (after the first byte enables).
    length : int
        Bytes requested (from the byte enables, 2.2.5).
    cuts : list of (int, int)
        ``(address, bytes)`` of each completion planned for the request, in address order.
    fault : Fault or None
    at : int
        Index in ``cuts`` of the completion the fault starts at.
    sent : int
        Completions sent for it so far (an error-status completion counts).
    late : int
        Of those, completions sent late (after a :attr:`Fault.DROPPED` delay).
    """

    tag: int
    address: int
    length: int
    cuts: list
    fault: Fault | None = None
    at: int = 0
    sent: int = 0
    late: int = 0

    def overlaps(self, address, length):
        return self.address < address + length and address < self.address + self.length


@dataclass
class FaultRule:
    """A fault and the requests it applies to (see :meth:`CompletionFaults.inject`)."""

    fault: Fault
    match: object
    count: int | None = 1
    at: int = 0
    late_ns: float | None = None
    hits: list = field(default_factory=list)  #: the :class:`ServedRead` records it took

    def wants(self, tlp):
        return (self.count is None or len(self.hits) < self.count) and bool(self.match(tlp))

    @property
    def done(self):
        """The rule has taken all the requests it was meant for."""
        return self.count is not None and len(self.hits) >= self.count


class _Delay:
    """Queue item: the completions behind it wait ``ns`` more."""

    def __init__(self, ns):
        self.ns = ns


class _Forget:
    """Queue item: the completions are not coming; release the tag in the device model."""


class _ReportTimeout:
    """Queue item: the hard IP reports the request's completion timeout on RC."""

    def __init__(self, tlp, byte_count, lower_address):
        self.tlp, self.byte_count, self.lower_address = tlp, byte_count, lower_address


class _Pending:
    def __init__(self, serial, record, items, now):
        self.serial, self.record, self.items = serial, record, deque(items)
        self.arrival = self.ready_at = now
        self.late = False


def _range_match(address, length):
    def match(tlp):
        start = tlp.address + tlp.get_first_be_offset()
        return start < address + length and address < start + tlp.get_be_byte_count()
    return match


class CompletionFaults:
    """Serve a root complex's memory read requests with reordering, splitting and faults.

    Creating it replaces the root complex's handler of memory read requests (``MEM_READ`` and
    ``MEM_READ_64`` TLPs) and starts a coroutine that sends the completions; :meth:`close` puts
    the stock handler back.

    Parameters
    ----------
    rc : cocotbext.pcie.core.RootComplex
    device : optional
        The cocotbext-pcie device model in front of the requester. With it, requests are
        checked against the Max_Read_Request_Size in the requester's own Device Control
        register (else against the root complex's setting), and for :attr:`Fault.DROPPED`
        without ``late_ns`` the UltraScale+ model's record of the dropped request's tag is
        cleared, as the hard IP's completion timeout would clear it (without ``device`` the
        model refuses the tag when the requester uses it again).
    reorder : bool
        Send the completions of different requests in a random order (else in arrival order).
    split : Split
        How requests are cut into completions.
    rcb : int
        Read Completion Boundary in bytes (64 or 128).
    depth : int
        With ``reorder``, the sender waits until this many requests have completions waiting,
        or until the oldest has waited ``hold_ns``, before it sends, so there is something to
        reorder.
    hold_ns : float
        Longest a request's completions are held back to collect others (ns of simulated time).
    seed : int
        Seed of the random choices (cuts and order).

    Attributes
    ----------
    reads : list of ServedRead
        Every request served, in arrival order (also the ones answered UR/CA because no memory
        is there, with ``cuts`` empty).
    rules : list of FaultRule
    completions : int
        Completion TLPs sent.
    overtakes : int
        Completions sent while a request that arrived earlier still had completions waiting
        (a measure of how much reordering took place).
    violations : list of str
        Requests that broke the requester rules (length above Max_Read_Request_Size, a 4 KB
        boundary crossed); those crossing 4 KB are discarded unanswered, like the stock handler
        does.
    """

    def __init__(self, rc, *, device=None, reorder=True, split=Split.RANDOM, rcb=RCB, depth=8,
                 hold_ns=400, seed=0):
        if rcb not in (64, 128):
            raise ValueError(f"the Read Completion Boundary is 64 or 128 bytes, not {rcb}")
        self.rc, self.device = rc, device
        self.reorder, self.split, self.rcb = reorder, Split(split), rcb
        self.depth, self.hold_ns = depth, hold_ns
        self.rng = random.Random(seed)
        self.log = logging.getLogger("cocotb.pcie.faults")
        self.reads, self.rules, self.violations = [], [], []
        self.completions = 0
        self.overtakes = 0
        self._pending = []
        self._serial = 0
        self._arrival = Event()
        self._idle = Event()
        self._idle.set()
        self._stock = {kind: rc.rx_tlp_handler.get(kind) for kind in _MEM_READS}
        for kind in _MEM_READS:
            rc.register_rx_tlp_handler(kind, self._request)
        self._task = cocotb.start_soon(self._run())

    @classmethod
    def for_host(cls, host, **kwargs):
        """For a :class:`amnic.sim.pcie_host.PcieHost` (its root complex and device model)."""
        return cls(host.rc, device=host.device, **kwargs)

    def close(self):
        """Give the memory read requests back to the stock handler and stop sending (waiting
        completions are discarded)."""
        for kind, handler in self._stock.items():
            if handler is not None:
                self.rc.register_rx_tlp_handler(kind, handler)
        self._task.cancel()

    # -- rules --------------------------------------------------------------------------------

    def inject(self, fault, where=None, *, count=1, at=0, late_ns=None):
        """Apply ``fault`` to the next ``count`` requests that ``where`` selects.

        Parameters
        ----------
        fault : Fault
        where : (int, int) or callable or None
            ``(address, length)``: requests whose bytes overlap that host range; a callable:
            requests (the MemRd :class:`~cocotbext.pcie.core.tlp.Tlp`) for which it returns
            true; ``None``: every request.
        count : int or None
            Requests to take (``None``: every one selected, until :meth:`remove`).
        at : int
            Index of the completion (in address order, of the cuts :class:`Split` chose) the
            fault starts at, limited to the request's last one: the poisoned completion, the
            one replaced by the error status (those before it are sent successful), the first
            one dropped. Negative values count from the end.
        late_ns : float, optional
            :attr:`Fault.DROPPED` only: send the dropped completions this many ns later
            instead of never.

        Returns
        -------
        FaultRule
            The rule; its ``hits`` list the requests it took. The first rule (in order of
            injection) that wants a request takes it.
        """
        fault = Fault(fault)
        if fault == Fault.HARD_IP_TIMEOUT and self.device is None:
            raise ValueError("a hard IP timeout report needs the device model")
        if late_ns is not None and fault != Fault.DROPPED:
            raise ValueError("late_ns goes with Fault.DROPPED only")
        if where is None:
            match = _everything
        elif callable(where):
            match = where
        else:
            match = _range_match(*where)
        rule = FaultRule(fault, match, count, at, late_ns)
        self.rules.append(rule)
        return rule

    def remove(self, rule):
        self.rules.remove(rule)

    def served(self, address, length):
        """The recorded requests overlapping host bytes ``address`` .. ``address + length``."""
        return [r for r in self.reads if r.overlaps(address, length)]

    async def wait_idle(self):
        """Until no completion waits to be sent (dropped ones do not count)."""
        await self._idle.wait()

    # -- serving requests ---------------------------------------------------------------------

    async def _request(self, tlp):
        rc = self.rc
        start = tlp.address + tlp.get_first_be_offset()
        length = tlp.get_be_byte_count()
        mrrs = 128 << self._max_read_request(tlp)
        if tlp.length * 4 > mrrs:
            self.violations.append(f"request of {tlp.length} DWORDs above MRRS {mrrs}: {tlp!r}")
        if tlp.length * 4 > 0x1000 - (tlp.address & 0xFFF):
            self.violations.append(f"request crosses a 4 KB boundary: {tlp!r}")
            return
        record = ServedRead(tlp.tag, start, length, [])
        self.reads.append(record)
        if not rc.mem_address_space.find_regions(tlp.address, tlp.length * 4):
            record.fault = Fault.UNSUPPORTED_REQUEST
            self._queue(record, [Tlp.create_ur_completion_for_tlp(tlp, PcieId(0, 0, 0))])
            return
        try:
            data = await rc.mem_address_space.read(tlp.address, tlp.length * 4)
        except Exception:
            record.fault = Fault.COMPLETER_ABORT
            self._queue(record, [Tlp.create_ca_completion_for_tlp(tlp, PcieId(0, 0, 0))])
            return
        record.cuts = self._cut(start, start + length)
        completions = [self._completion(tlp, data, start + length, address, nbytes)
                       for address, nbytes in record.cuts]
        rule = next((r for r in self.rules if r.wants(tlp)), None)
        if rule is None:
            self._queue(record, completions)
            return
        rule.hits.append(record)
        record.fault = rule.fault
        k = min(rule.at if rule.at >= 0 else len(completions) + rule.at, len(completions) - 1)
        record.at = k = max(k, 0)
        if rule.fault == Fault.POISONED:
            completions[k].ep = True
            items = completions
        elif rule.fault == Fault.HARD_IP_TIMEOUT:
            # After the completions sent before have crossed the link, as for DROPPED.
            address = record.cuts[k][0]
            items = completions[:k] + [
                _Delay(FORGET_NS), _ReportTimeout(tlp, start + length - address, address)]
        elif rule.fault == Fault.DROPPED:
            if rule.late_ns:
                rest = [_Delay(rule.late_ns), *completions[k:]]
            else:
                # Clear the device model's record only once the completions sent before have
                # crossed the link, or the model would take them for unknown tags.
                rest = [_Delay(FORGET_NS), _Forget()]
            items = completions[:k] + rest
        else:
            status = CplStatus.CA if rule.fault == Fault.COMPLETER_ABORT else CplStatus.UR
            error = Tlp.create_completion_for_tlp(tlp, PcieId(0, 0, 0), False, status)
            address = record.cuts[k][0]
            error.byte_count = start + length - address
            error.lower_address = address & 0x7F
            items = completions[:k] + [error]
        self.log.info("tag %d, %d bytes at 0x%x: %s from completion %d of %d", tlp.tag, length,
                      start, rule.fault.value, k, len(completions))
        self._queue(record, items)

    def _max_read_request(self, tlp):
        """Max_Read_Request_Size (encoded) the requester's Device Control register holds."""
        functions = getattr(self.device, "functions", None)
        if functions and tlp.requester_id.function < len(functions):
            return functions[tlp.requester_id.function].pcie_cap.max_read_request_size
        return self.rc.max_read_request_size

    def _cut(self, start, end):
        """``(address, bytes)`` of the completions for host bytes ``start`` .. ``end``."""
        mps = 128 << self.rc.max_payload_size
        rcb = self.rcb
        cuts = []
        address = start
        while address < end:
            base = address & ~3
            first = (address // rcb + 1) * rcb
            # RCB-aligned ends short of ``end`` whose payload (from ``base``) fits in MPS.
            inner = list(range(first, min(end - 1, base + mps) + 1, rcb))
            whole = ((end + 3) & ~3) - base <= mps
            if self.split == Split.RCB:
                stop = inner[0] if inner else end
            elif self.split == Split.LARGEST:
                stop = end if whole else inner[-1]
            else:
                stop = self.rng.choice(inner + [end] * whole)
            cuts.append((address, stop - address))
            address = stop
        return cuts

    @staticmethod
    def _completion(tlp, data, end, address, nbytes):
        cpl = Tlp.create_completion_data_for_tlp(tlp, PcieId(0, 0, 0))
        first = (address & ~3) - tlp.address
        last = ((address + nbytes + 3) & ~3) - tlp.address
        cpl.set_data(data[first:last])
        cpl.byte_count = end - address  # 4096 goes on the wire as 0 (2.2.9)
        cpl.lower_address = address & 0x7F
        return cpl

    def _queue(self, record, items):
        self._pending.append(_Pending(self._serial, record, items, get_sim_time("ns")))
        self._serial += 1
        self._idle.clear()
        self._arrival.set()

    # -- sending ------------------------------------------------------------------------------

    async def _wait(self, until_ns):
        """Until a request arrives or ``until_ns`` (``None``: no limit)."""
        self._arrival.clear()
        if until_ns is None:
            await self._arrival.wait()
        else:
            await First(self._arrival.wait(),
                        Timer(max(until_ns - get_sim_time("ns"), 1), "ns", round_mode="ceil"))

    async def _run(self):
        while True:
            if not self._pending:
                self._idle.set()
                await self._wait(None)
                continue
            now = get_sim_time("ns")
            ready = [p for p in self._pending if p.ready_at <= now]
            if not ready:
                await self._wait(min(p.ready_at for p in self._pending))
                continue
            if self.reorder:
                oldest = min(p.arrival for p in ready)
                if len(ready) < self.depth and now < oldest + self.hold_ns:
                    await self._wait(oldest + self.hold_ns)
                    continue
                entry = self.rng.choice(ready)
            else:
                entry = min(ready, key=lambda p: p.serial)
            if any(p.serial < entry.serial for p in self._pending):
                self.overtakes += 1
            item = entry.items.popleft()
            if isinstance(item, _Delay):
                entry.ready_at = now + item.ns
                entry.arrival = entry.ready_at
                entry.late = True
            elif isinstance(item, _Forget):
                self._forget(entry.record.tag)
            elif isinstance(item, _ReportTimeout):
                self._report_timeout(item)
            else:
                entry.record.sent += 1
                entry.record.late += entry.late
                self.completions += 1
                await self.rc.send(item)
            if not entry.items:
                self._pending.remove(entry)

    def _report_timeout(self, item):
        """Put the hard IP's completion timeout report for ``item.tlp`` on the device model's RC
        queue (as its completion handling would) and release the tag in the model."""
        report = Tlp_us()
        report.fmt_type = TlpType.CPL
        report.requester_id = item.tlp.requester_id
        report.tag = item.tlp.tag
        report.tc, report.attr = item.tlp.tc, item.tlp.attr
        report.byte_count = item.byte_count
        report.lower_address = item.lower_address & 0xFFF
        report.error_code = ErrorCode.TIMEOUT
        report.request_completed = True
        self._forget(item.tlp.tag)
        self.device.rc_queue.put_nowait(report)

    def _forget(self, tag):
        device = self.device
        if device is None or not hasattr(device, "active_request"):
            return
        device.active_request[tag] = None
        if hasattr(device, "get_available_tag_count"):
            device.tag_available_count = device.get_available_tag_count()


def _everything(tlp):
    return True
