"""Host driver of the match-action pipeline (:class:`amnic.flow.pipeline.MatchActionPipeline`).

Written as a real driver would be: it talks to the registers only, through a *backend* with
two coroutines, ``read(offset)`` and ``write(offset, value)`` on 32-bit words
(:class:`~amnic.sim.csr_bus.SimulatorBackend` in the Amaranth simulator, an AXI4-Lite master in
cocotb), and it takes every offset from the register maps (:mod:`amnic.csr`). Each block of the
pipeline sits in its own window; :class:`Window` shifts a backend to one of them.
"""

from amnic.csr.ids import ACL, MATCH_ACTION, METERS, RSS, VXLAN_TEMPLATES
from amnic.flow import acl as acl_regs
from amnic.flow import meter as meter_regs
from amnic.flow import pipeline as pipeline_regs
from amnic.flow import rss as rss_regs
from amnic.flow import vxlan as vxlan_regs
from amnic.flow.acl import KEY_WORDS as ACL_KEY_WORDS
from amnic.flow.acl import acl_action_value
from amnic.flow.vxlan import TEMPLATE_WORDS, template_value

from .flow_table_driver import FlowTableDriver

__all__ = ["Window", "MatchActionDriver", "DriverError"]


class DriverError(Exception):
    """A block is not what the driver expects, or a command did not finish."""


class Window:
    """A backend whose offsets start at ``base`` of another backend."""

    def __init__(self, backend, base):
        self.backend = backend
        self.base = base

    async def read(self, offset):
        return await self.backend.read(self.base + offset)

    async def write(self, offset, value):
        await self.backend.write(self.base + offset, value)


async def _read64(backend, register):
    value = 0
    for half, offset in enumerate(register.words):
        value |= await backend.read(offset) << (32 * half)
    return value


async def _write(backend, register, value):
    for half, offset in enumerate(register.words):
        await backend.write(offset, (value >> (32 * half)) & 0xFFFF_FFFF)


async def _wait_idle(backend, register, what, polls=1000):
    for _ in range(polls):
        if await backend.read(register.offset) == 0:
            return
    raise DriverError(f"{what} command did not finish")


class MatchActionDriver:
    """Configure and observe one match-action pipeline.

    Create it with :meth:`open`. Methods are coroutines; do not run two at once.

    Attributes
    ----------
    flows : FlowTableDriver
        Inserts, modifies and deletes flow-table entries (cuckoo moves included).
    """

    def __init__(self, backend, windows):
        self.backend = backend
        self.win = {name: Window(backend, base) for name, base in windows.items()}
        self.flows = None

    @classmethod
    async def open(cls, backend, windows, **flow_kwargs):
        """Check every block's identity and return a driver.

        ``windows`` is ``{block name: base}`` (``MatchActionPipeline.windows`` gives
        ``{name: (base, block)}``; either form is accepted). ``flow_kwargs`` go to
        :meth:`FlowTableDriver.open`.
        """
        windows = {name: (w[0] if isinstance(w, tuple) else w) for name, w in windows.items()}
        self = cls(backend, windows)
        for name, type_id in (("match_action", MATCH_ACTION), ("acl", ACL), ("rss", RSS),
                              ("meters", METERS), ("vxlan_templates", VXLAN_TEMPLATES)):
            got = await self.win[name].read(0)
            if got != type_id:
                raise DriverError(f"block {name!r} has type {got:#010x}, not {type_id:#010x}")
        self.flows = await FlowTableDriver.open(self.win["flow_table"], **flow_kwargs)
        return self

    # -- pipeline block ---------------------------------------------------------------------------

    async def set_control(self, value):
        """Write the ``control`` register (a :class:`~amnic.flow.records.PipelineControl` word)."""
        await _write(self.win["match_action"], pipeline_regs.REGISTERS["control"], value)

    async def counters(self):
        """Every pipeline counter, ``{name: value}``."""
        regs = pipeline_regs.REGISTERS
        return {name: await _read64(self.win["match_action"], regs[name])
                for name, _ in pipeline_regs.COUNTERS}

    # -- ACL --------------------------------------------------------------------------------------

    async def acl_write(self, index, rule):
        """Install :class:`~amnic.sim.acl_model.AclRule` ``rule`` in slot ``index``."""
        w, regs = self.win["acl"], acl_regs.REGISTERS
        await _write(w, regs["index"], index)
        for k in range(ACL_KEY_WORDS):
            await _write(w, regs[f"value_{k}"], rule.value >> (32 * k) & 0xFFFF_FFFF)
            await _write(w, regs[f"mask_{k}"], rule.mask >> (32 * k) & 0xFFFF_FFFF)
        await _write(w, regs["action"], acl_action_value(
            rule.verdict, rule.queue_first, rule.queue_count, rule.valid))
        await _write(w, regs["command"], 1)
        await _wait_idle(w, regs["command"], "ACL")

    async def acl_clear(self, index):
        w, regs = self.win["acl"], acl_regs.REGISTERS
        await _write(w, regs["index"], index)
        await _write(w, regs["command"], 4)
        await _wait_idle(w, regs["command"], "ACL")

    async def acl_default(self, verdict):
        """Verdict of a packet that matches no rule (0 ALLOW, 1 DENY)."""
        await _write(self.win["acl"], acl_regs.REGISTERS["control"], verdict)

    # -- RSS --------------------------------------------------------------------------------------

    async def rss_configure(self, key=None, table=None, types=None):
        """Load the 40-byte Toeplitz ``key``, the indirection ``table`` (list of queues) and
        the hash ``types`` (:class:`~amnic.sim.rss_model.HashTypes`, written last so RSS turns
        on with a complete configuration); each is optional."""
        w, regs = self.win["rss"], rss_regs.REGISTERS
        if key is not None:
            for k in range(10):
                await _write(w, regs[f"key_{k}"], int.from_bytes(key[4 * k:4 * k + 4], "big"))
        for index, queue in enumerate(table or ()):
            await _write(w, regs["reta_index"], index)
            await _write(w, regs["reta_data"], queue)
            await _write(w, regs["reta_cmd"], 1)
            await _wait_idle(w, regs["reta_cmd"], "RSS table")
        if types is not None:
            word = 0
            for f in regs["control"].fields:
                word |= int(bool(getattr(types, f.name))) << f.offset
            await _write(w, regs["control"], word)

    # -- meters -----------------------------------------------------------------------------------

    async def meter_configure(self, index, rate, burst, mode=0, enable=True):
        """Rate in bytes per tick times 2**20, burst in bytes, mode 0 MARK / 1 DROP."""
        w, regs = self.win["meters"], meter_regs.REGISTERS
        await _write(w, regs["index"], index)
        await _write(w, regs["rate"], rate)
        await _write(w, regs["burst"], burst)
        await _write(w, regs["control"], int(bool(enable)) | mode << 1)
        await _write(w, regs["command"], 1)
        await _wait_idle(w, regs["command"], "meter")

    async def meter_counts(self, index):
        """``(green, red)`` packets of meter ``index``."""
        w, regs = self.win["meters"], meter_regs.REGISTERS
        await _write(w, regs["index"], index)
        await _write(w, regs["command"], 2)
        await _wait_idle(w, regs["command"], "meter")
        return (await _read64(w, regs["green_packets"]), await _read64(w, regs["red_packets"]))

    # -- encapsulation templates -----------------------------------------------------------------

    async def template_write(self, index, **fields):
        """Store template ``index`` (fields of :class:`~amnic.flow.vxlan.EncapTemplate`)."""
        w, regs = self.win["vxlan_templates"], vxlan_regs.REGISTERS
        value = template_value(**fields)
        await _write(w, regs["index"], index)
        for k in range(TEMPLATE_WORDS):
            await _write(w, regs[f"data_{k}"], value >> (32 * k) & 0xFFFF_FFFF)
        await _write(w, regs["command"], 1)
        await _wait_idle(w, regs["command"], "template")
