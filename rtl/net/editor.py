"""Streaming packet editor: insert and remove bytes at one point of a packet, then patch bytes.

The editor is the engine under the rewrite actions of the NIC:

* VLAN push / pop (IEEE 802.1Q-2018 clause 9): insert or remove the 4-octet tag (TPID + TCI)
  after the source address, at byte 12;
* VXLAN encapsulation / decapsulation (RFC 7348 section 5): prepend or strip the outer
  Ethernet + IPv4 (RFC 791) or IPv6 (RFC 8200) + UDP (RFC 768) + VXLAN header, 50 or 70 bytes;
* DSCP / ECN rewrite (RFC 2474, RFC 3168): patch bits of the traffic class byte and the IPv4
  header checksum (the new checksum is computed by whoever issues the command, for instance
  incrementally as in RFC 1624), or the length fields of an inserted template.

Each packet is edited by one :class:`EditCommand`::

    output = input[:offset] + insert_data[:insert] + input[offset + remove:]

after which up to ``overwrites`` two-byte patches are applied at positions of the *output*
packet. The packet streams through: a byte-realignment buffer of two beats and a barrel shifter
move the bytes after the edit point to their new lanes; nothing is stored whole.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from amnic.stream import PacketLayout, PacketSignature

__all__ = ["Overwrite", "EditCommand", "EditError", "PacketEditor"]


class Overwrite(data.StructLayout):
    """One byte-field patch of an :class:`EditCommand`.

    When ``enable`` is set, output bytes ``position`` and ``position + 1`` become
    ``(byte & ~mask[k]) | (value[k] & mask[k])`` for ``k`` = 0, 1: ``value[0]`` and ``mask[0]``
    belong to the byte at ``position`` (the first on the wire, so a 16-bit network-order field
    has its high octet in ``value[0]``). ``mask`` is a bit mask per byte: 0xFF replaces the
    byte, 0xFC only its DSCP bits, 0x00 leaves it alone. Bytes beyond the end of the output
    packet are not touched.

    Parameters
    ----------
    position_width : int
        Width of ``position`` in bits.
    """

    def __init__(self, position_width=16):
        super().__init__({
            "enable": 1,
            "position": position_width,
            "value": data.ArrayLayout(8, 2),
            "mask": data.ArrayLayout(8, 2),
        })


class EditCommand(data.StructLayout):
    """The edit of one packet (see the module description for its meaning).

    Fields
    ------
    offset : unsigned(position_width)
        Byte position in the *input* packet where bytes are removed and inserted.
    remove : range(max_remove + 1)
        Bytes removed from ``offset`` on. Larger values that the field can hold are clamped to
        ``max_remove`` (and reported as :attr:`EditError.clamped`).
    insert : range(max_insert + 1)
        Bytes of ``insert_data`` inserted at ``offset``; clamped to ``max_insert`` like
        ``remove``.
    insert_data : ArrayLayout(8, max_insert)
        The inserted bytes, element 0 first on the wire.
    overwrites : ArrayLayout(Overwrite(position_width), overwrites)
        Byte patches at *output* positions, applied in order after the edit (a later one wins
        where two overlap).

    A command with ``insert == remove == 0`` and no overwrite enabled leaves the packet as it
    is.
    """

    def __init__(self, max_insert=64, max_remove=128, overwrites=2, position_width=16):
        if max_insert < 1 or max_remove < 1:
            raise ValueError(f"max_insert and max_remove must be at least 1, not {max_insert} "
                             f"and {max_remove}")
        if overwrites < 0:
            raise ValueError(f"the overwrite count must be non-negative, not {overwrites}")
        if position_width < 1:
            raise ValueError(f"position width must be positive, not {position_width}")
        self.max_insert = max_insert
        self.max_remove = max_remove
        self.overwrite_count = overwrites
        self.position_width = position_width
        super().__init__({
            "offset": position_width,
            "remove": range(max_remove + 1),
            "insert": range(max_insert + 1),
            "insert_data": data.ArrayLayout(8, max_insert),
            "overwrites": data.ArrayLayout(Overwrite(position_width), overwrites),
        })

    def __repr__(self):
        return (f"EditCommand(max_insert={self.max_insert}, max_remove={self.max_remove}, "
                f"overwrites={self.overwrite_count}, position_width={self.position_width})")


class EditError(data.Struct):
    """Reasons a command did not fit its packet; reported for one cycle per affected packet.

    ``offset``
        ``offset`` lies beyond the end of the packet: no byte is inserted or removed, the
        overwrites still apply, and the packet leaves with ``user`` bit 0 ("bad") set.
    ``overrun``
        ``offset + remove`` runs past the end of the packet: only the bytes that exist are
        removed (``input[offset:]``), the inserted bytes still go in, and the packet is not
        marked. This is exactly what byte slicing does.
    ``empty``
        The edited packet would have no byte at all (every byte removed, nothing inserted): the
        packet is dropped; nothing of it leaves.
    ``clamped``
        ``insert`` or ``remove`` held a value above ``max_insert`` / ``max_remove``; the
        maximum was used instead. The packet is not marked.
    """

    offset: 1
    overrun: 1
    empty: 1
    clamped: 1


# -- byte-lane helpers ---------------------------------------------------------------------


def _low_ones(count, width):
    """``width`` bits with bits ``[0, count)`` set (``count`` a Value, at most ``width``)."""
    ones = Const((1 << width) - 1, width)
    return ~(ones << count)[:width]


def _keep_low_bytes(value, count):
    """``value`` with every byte at lane ``count`` and above cleared."""
    return value & _low_ones(Cat(Const(0, 3), count), len(value))


def _stage(m, value, name):
    """``value`` through a named combinational signal.

    Each stage of a shifter reads the previous one twice; naming the stages keeps the logic
    (and the simulator's code for it) linear in the number of stages.
    """
    sig = Signal(len(value), name=name)
    m.d.comb += sig.eq(value)
    return sig


def _shift_up(m, value, amount, name):
    """``value`` moved ``amount`` byte lanes up (towards the end of the wire), same width."""
    width = len(value)
    for bit in range(len(amount)):
        step = 8 << bit
        moved = Const(0, width) if step >= width else Cat(Const(0, step), value[:width - step])
        value = _stage(m, Mux(amount[bit], moved, value), f"{name}_{bit}")
    return value


def _shift_down(m, value, amount, name):
    """``value`` moved ``amount`` byte lanes down (towards lane 0), same width."""
    width = len(value)
    for bit in range(len(amount)):
        step = 8 << bit
        moved = Const(0, width) if step >= width else Cat(value[step:], Const(0, step))
        value = _stage(m, Mux(amount[bit], moved, value), f"{name}_{bit}")
    return value


def _popcount(bits):
    total = Const(0, 1)
    for bit in bits:
        total = total + bit
    return total


# -- the realignment buffer ------------------------------------------------------------------


class _ChunkLayout(data.StructLayout):
    """What the sequencer hands the packer per cycle: up to two runs of bytes, in order.

    ``head`` bytes ``[0, head_len)`` come first, then ``body`` bytes
    ``[body_start, body_start + body_len)``. ``last`` closes the packet after them; ``user``
    is the packet's status (read with ``last``); ``overwrites`` are the packet's patches.
    """

    def __init__(self, lanes, user_width, command):
        super().__init__({
            "head": 8 * lanes,
            "head_len": range(lanes + 1),
            "body": 8 * lanes,
            "body_start": range(lanes),
            "body_len": range(lanes + 1),
            "last": 1,
            "user": user_width,
            "overwrites": command["overwrites"].shape,
        })


class _Packer(wiring.Component):
    """Appends byte runs to a packet and cuts the result into packed beats.

    The residue ``r`` holds ``rc`` bytes (0..L) not yet sent, lanes ``[0, rc)``, where L is the
    number of byte lanes. Each cycle the incoming chunk is placed behind the residue in a
    2L-byte window (a barrel shifter), the overwrites that fall into the window are patched
    in, and when the window holds more than L bytes the first L leave as one beat. A full
    residue is kept rather than sent while the packet may still end with an empty chunk, so
    the beat that carries ``last`` always has at least one byte.

    When a packet's last chunk leaves more than L bytes, the remainder (``r_last``) goes out in
    the next cycle while the first chunk of the next packet moves into the residue: packet
    boundaries cost no cycle. A chunk that does not fit is held back (``chunk.ready`` low)
    while the residue drains; this happens only to a chunk with ``head_len + body_len > L``
    arriving on a full residue or behind the remainder of the previous packet.

    Contract with the sequencer: ``head_len > 0`` only while the residue holds 0 or L bytes
    (the head run is placed with a 2:1 multiplexer, not a shifter).
    """

    def __init__(self, width, user_width, command):
        self.lanes = width // 8
        self.user_width = user_width
        super().__init__({
            "chunk": In(stream.Signature(_ChunkLayout(self.lanes, user_width, command))),
            "o": Out(PacketSignature(width, user_width)),
            # The chunk taken this cycle ends a packet that has no byte (comb, one cycle).
            "dropped": Out(1),
        })
        self.position_width = command.position_width

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        chunk, o = self.chunk, self.o
        c = chunk.payload

        r = Signal(8 * L)
        rc = Signal(range(L + 1))
        r_last = Signal()  # r holds the end of a packet and leaves next
        r_user = Signal(self.user_width)
        # Output position of window lane 0 in the packet being appended (saturating).
        obase = Signal(self.position_width + 2)
        obase_limit = 1 << (self.position_width + 1)

        rc_eff = Signal(range(L + 1))
        m.d.comb += rc_eff.eq(Mux(r_last, 0, rc))

        residue = _keep_low_bytes(r, rc_eff)
        head = _keep_low_bytes(c.head, c.head_len)
        head_placed = Mux(rc_eff == L, Cat(Const(0, 8 * L), head), Cat(head, Const(0, 8 * L)))
        body = _keep_low_bytes(_shift_down(m, c.body, c.body_start, "body_down"), c.body_len)
        body_at = Signal(range(2 * L + 1))
        m.d.comb += body_at.eq(rc_eff + c.head_len)
        body_placed = _shift_up(m, Cat(body, Const(0, 8 * L)), body_at, "body_up")
        window = Signal(16 * L)
        m.d.comb += window.eq(Cat(residue, Const(0, 8 * L)) | head_placed | body_placed)
        total = Signal(range(3 * L + 1))
        m.d.comb += total.eq(rc_eff + c.head_len + c.body_len)

        # Overwrites whose bytes fall into the window. Re-patching a byte of the residue that
        # was patched before gives the same byte, so the whole window may be patched.
        patched = window
        lane_bits = ceil_log2(2 * L)
        for n_ow, ow in enumerate(c.overwrites):
            for k in range(2):
                where = Signal(self.position_width + 3)
                hit = Signal()
                m.d.comb += [
                    where.eq(ow.position + k - obase),
                    hit.eq(ow.enable & (ow.position + k >= obase)
                           & (ow.position + k - obase < 2 * L)),
                ]
                # Mask and value moved to the byte lane they patch.
                shift = Cat(Const(0, 3), where[:lane_bits])
                bits = Mux(hit, (ow.mask[k] << shift)[:16 * L], 0)
                value = (ow.value[k] << shift)[:16 * L]
                patched = _stage(m, (patched & ~bits) | (value & bits), f"patched_{n_ow}_{k}")
        window_patched = patched

        step = ~o.valid | o.ready
        fits = Signal()
        m.d.comb += [
            fits.eq(total <= Mux(r_last, L, 2 * L)),
            chunk.ready.eq(step & fits),
        ]
        take = chunk.valid & chunk.ready
        m.d.comb += self.dropped.eq(take & c.last & (total == 0))

        def keep(count):
            return _low_ones(count, L)

        def emit(data_, keep_, last, user):
            m.d.sync += [
                o.valid.eq(1),
                o.payload.data.eq(data_),
                o.payload.keep.eq(keep_),
                o.payload.last.eq(last),
                o.payload.user.eq(user),
            ]

        def advance_obase():
            m.d.sync += obase.eq(Mux(obase >= obase_limit, obase, obase + L))

        full = Const((1 << L) - 1, L)
        low, high = window_patched[:8 * L], window_patched[8 * L:]
        with m.If(step):
            m.d.sync += o.valid.eq(0)
            with m.If(r_last):
                emit(r, keep(rc), 1, r_user)
                with m.If(take):
                    # The next packet moves into the residue; nothing of it leaves yet.
                    m.d.sync += [
                        r.eq(low), rc.eq(total), r_user.eq(c.user),
                        r_last.eq(c.last & (total != 0)),
                    ]
                with m.Else():
                    m.d.sync += [r_last.eq(0), rc.eq(0)]
            with m.Elif(chunk.valid & ~fits):
                # A long head + body run behind a full residue: send the residue first.
                emit(r, full, 0, 0)
                m.d.sync += rc.eq(0)
                advance_obase()
            with m.Elif(take & c.last):
                m.d.sync += obase.eq(0)
                with m.If(total > L):
                    emit(low, full, 0, 0)
                    m.d.sync += [r.eq(high), rc.eq(total - L), r_last.eq(1), r_user.eq(c.user)]
                with m.Else():
                    with m.If(total != 0):
                        emit(low, keep(total), 1, c.user)
                    m.d.sync += rc.eq(0)
            with m.Elif(take):
                with m.If(total > L):
                    emit(low, full, 0, 0)
                    m.d.sync += [r.eq(high), rc.eq(total - L)]
                    advance_obase()
                with m.Else():
                    m.d.sync += [r.eq(low), rc.eq(total)]
        return m


# -- the editor ------------------------------------------------------------------------------


class _Phase(enum.Enum, shape=2):
    HEAD = 0  # before the edit point: whole beats pass
    INSERT = 1  # sending insert chunks after the first one; the edit beat waits
    TAIL = 2  # after the edit point: what is left of each beat after the removed bytes


class PacketEditor(wiring.Component):
    """Streaming insert / remove / overwrite engine for packets.

    Every packet on ``i`` is edited by one command from ``cmd`` (see :class:`EditCommand`): the
    command is taken before or in the same cycle as the packet's first beat and held until its
    last beat; the next command may be taken in the cycle of that last beat. Packets leave on
    ``o`` in order, packed (full beats, then a last beat with contiguous ``keep``); the
    ``user`` of a packet's last input beat goes on its last output beat, with bit 0 (bad) set
    when the offset did not fit (:class:`EditError`).

    Throughput: one input beat per cycle and one output beat per cycle in steady state. With
    the output always ready and commands waiting, a packet of ``n`` bytes takes
    ``ceil(n / L)`` cycles on ``i`` (``L = width // 8`` byte lanes), plus, when it inserts
    ``I > 0`` bytes:

    * ``ceil(I / L) - 1`` cycles for the insert chunks after the first;
    * one cycle when bytes of the beat holding ``offset`` follow the inserted ones (that beat
      is read twice: its head with the first insert chunk, its tail after the last one);
    * one cycle when ``head + min(I, L) > L`` meets a full realignment buffer, ``head`` being
      the bytes of that beat before ``offset`` (for instance an append after a full last beat).

    Removing bytes, patching bytes and packet boundaries cost nothing; a packet that shrinks
    leaves idle cycles on ``o``. So a 4-byte VLAN push costs one cycle per packet at every
    width (64-byte packets: 9 cycles at 64 bit, 2 at 512 bit), a VLAN pop none (8 and 1), a
    50-byte VXLAN encapsulation at offset 0 costs ``ceil(50 / L)`` cycles and the
    decapsulation none. ``i.ready`` and ``cmd.ready`` depend combinationally on ``o.ready``;
    a :class:`~amnic.stream.SkidBuffer` behind ``o`` cuts that path.

    Latency: a full beat stays in the realignment buffer until the packet's next beat arrives
    (only then is it known that more bytes follow), so with back-to-back beats the first beat
    of a packet leaves two cycles after its hand-off on ``i``; the last bytes of a packet leave
    one cycle after its last beat (one more when they overflow the last output beat).

    Bad commands (each counted on ``errors``, see :class:`EditError`): offset beyond the end
    (forwarded unedited, marked bad), removal past the end (what exists is removed), empty
    result (dropped), insert or remove above the maximum (clamped). No packet is lost, mixed
    or stalled forever by a command.

    Parameters
    ----------
    width : int
        Data width in bits; ``width // 8`` must be a power of two (8..1024 bits).
    user_width : int
        Width of ``user`` (at least 1: bit 0 is the bad-packet flag).
    max_insert, max_remove : int
        Largest insert and remove, in bytes; they size the command fields.
    overwrites : int
        Number of :class:`Overwrite` patches per command.
    position_width : int
        Width of ``offset`` and overwrite positions (16: packets up to 64 KiB).

    Attributes
    ----------
    i : In(PacketSignature(width, user_width))
        Packets to edit.
    o : Out(PacketSignature(width, user_width))
        Edited packets, registered.
    cmd : In(stream.Signature(EditCommand(...)))
        One command per packet, in packet order.
    errors : Out(EditError)
        Registered; for one cycle shortly after the last beat of a packet whose command did not
        fit it, the reasons; zero otherwise.
    """

    def __init__(self, width=64, user_width=1, max_insert=64, max_remove=128, overwrites=2,
                 position_width=16):
        PacketLayout(width, user_width)  # validates the widths
        lanes = width // 8
        if lanes & (lanes - 1):
            raise ValueError(f"the byte lane count must be a power of two, not {lanes}")
        if user_width < 1:
            raise ValueError("the editor marks bad packets in user bit 0: user_width >= 1")
        self.width = width
        self.user_width = user_width
        self.lanes = lanes
        self.command_layout = EditCommand(max_insert, max_remove, overwrites, position_width)
        super().__init__({
            "i": In(PacketSignature(width, user_width)),
            "o": Out(PacketSignature(width, user_width)),
            "cmd": In(stream.Signature(self.command_layout)),
            "errors": Out(EditError),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        layout = self.command_layout
        pw = layout.position_width
        i, beat = self.i, self.i.payload

        m.submodules.packer = packer = _Packer(self.width, self.user_width, layout)
        wiring.connect(m, wiring.flipped(self.o), packer.o)
        chunk = packer.chunk.payload

        # -- the command of the current packet: held, or taken in this very cycle ----------
        held = Signal(layout)
        loaded = Signal()
        cmd = Signal(layout)
        m.d.comb += cmd.eq(Mux(loaded, held, self.cmd.payload))
        have_cmd = loaded | self.cmd.valid

        insert = Signal(range(layout.max_insert + 1))
        remove = Signal(range(layout.max_remove + 1))
        clamped = Signal()
        m.d.comb += [
            insert.eq(Mux(cmd.insert > layout.max_insert, layout.max_insert, cmd.insert)),
            remove.eq(Mux(cmd.remove > layout.max_remove, layout.max_remove, cmd.remove)),
            clamped.eq((cmd.insert > layout.max_insert) | (cmd.remove > layout.max_remove)),
        ]
        offset = cmd.offset
        tail = Signal(pw + 1)  # first input byte after the removed ones
        m.d.comb += tail.eq(offset + remove)

        # Insert data cut into L-byte chunks.
        n_chunks = -(-layout.max_insert // L)
        insert_bits = Cat(cmd.insert_data.as_value(),
                          Const(0, 8 * (n_chunks * L - layout.max_insert)))

        # -- where the current beat sits ----------------------------------------------------
        phase = Signal(_Phase)
        pos = Signal(pw + 2)  # input byte position of the current beat (saturating)
        pos_limit = 1 << (pw + 1)
        ins_index = Signal(range(max(n_chunks, 2)))
        ins_left = Signal(range(layout.max_insert + 1))  # insert bytes not yet sent (INSERT)

        count = Signal(range(L + 1))
        end = Signal(pw + 3)
        m.d.comb += [
            count.eq(Mux(beat.last, _popcount(beat.keep), L)),
            end.eq(pos + count),
        ]
        edit_here = Signal()
        m.d.comb += edit_here.eq(Mux(beat.last, offset <= end, offset < pos + L))
        head_len = Signal(range(L + 1))
        m.d.comb += head_len.eq(offset - pos)
        tail_here = Signal()  # some bytes after the removed ones are in this beat
        tail_start = Signal(range(L))
        tail_len = Signal(range(L + 1))
        m.d.comb += [
            tail_here.eq(tail < end),
            tail_start.eq(Mux(tail > pos, tail - pos, 0)),
            tail_len.eq(Mux(tail_here, end - Mux(tail > pos, tail, pos), 0)),
        ]
        bad_offset = Signal()
        m.d.comb += bad_offset.eq((phase == _Phase.HEAD) & beat.last & ~edit_here)

        # Insert bytes pending at this step: all of them at the edit beat, then what is left.
        ins_now = Signal(range(layout.max_insert + 1))
        m.d.comb += ins_now.eq(Mux(phase == _Phase.HEAD, insert, ins_left))
        ins_more = Signal()  # another insert chunk follows this one
        m.d.comb += ins_more.eq(ins_now > L)
        ins_chunk = insert_bits.word_select(Mux(phase == _Phase.HEAD, 0, ins_index), 8 * L)

        consume = Signal()  # this step is the beat's last
        m.d.comb += [
            chunk.overwrites.eq(cmd.overwrites),
            chunk.user.eq(beat.user | bad_offset),
            # Defaults: the whole beat, as before the edit point.
            chunk.head.eq(beat.data),
            chunk.head_len.eq(0),
            chunk.body.eq(beat.data),
            chunk.body_start.eq(0),
            chunk.body_len.eq(count),
            consume.eq(1),
        ]
        next_phase = Signal(_Phase)
        m.d.comb += next_phase.eq(phase)

        def send_insert_chunk():
            m.d.comb += [
                chunk.body.eq(ins_chunk),
                chunk.body_start.eq(0),
                chunk.body_len.eq(Mux(ins_more, L, ins_now)),
                # The beat is done after the last insert chunk unless its tail follows.
                consume.eq(~ins_more & ~tail_here),
                next_phase.eq(Mux(ins_more, _Phase.INSERT, _Phase.TAIL)),
            ]

        def send_tail():
            m.d.comb += [
                chunk.body_start.eq(tail_start),
                chunk.body_len.eq(tail_len),
            ]

        with m.Switch(phase):
            with m.Case(_Phase.HEAD):
                with m.If(edit_here):
                    m.d.comb += [chunk.head_len.eq(head_len), next_phase.eq(_Phase.TAIL)]
                    with m.If(insert != 0):
                        send_insert_chunk()
                    with m.Else():
                        send_tail()
            with m.Case(_Phase.INSERT):
                send_insert_chunk()
            with m.Case(_Phase.TAIL):
                send_tail()
        m.d.comb += [
            chunk.last.eq(beat.last & consume),
            packer.chunk.valid.eq(have_cmd & i.valid),
            i.ready.eq(have_cmd & packer.chunk.ready & consume),
        ]

        step = packer.chunk.valid & packer.chunk.ready
        finishing = step & consume & beat.last

        with m.If(step):
            m.d.sync += [
                phase.eq(next_phase),
                ins_left.eq(ins_now - L),
                ins_index.eq(Mux(phase == _Phase.HEAD, 1, ins_index + 1)),
            ]
            with m.If(consume):
                m.d.sync += pos.eq(Mux(pos >= pos_limit, pos, pos + L))
            with m.If(finishing):
                m.d.sync += [phase.eq(_Phase.HEAD), pos.eq(0), ins_index.eq(0)]

        # -- command hand-off ---------------------------------------------------------------
        m.d.comb += self.cmd.ready.eq(~loaded | finishing)
        with m.If(self.cmd.valid & self.cmd.ready):
            # Held for this packet (taken early, or with a beat that does not end it), or for
            # the next one (taken with this packet's last beat).
            m.d.sync += [held.eq(self.cmd.payload), loaded.eq(loaded | ~finishing)]
        with m.Elif(finishing):
            m.d.sync += loaded.eq(0)

        # -- error report -------------------------------------------------------------------
        m.d.sync += self.errors.eq(0)
        with m.If(finishing):
            m.d.sync += [
                self.errors.offset.eq(bad_offset),
                self.errors.overrun.eq(~bad_offset & (tail > end)),
                self.errors.empty.eq(packer.dropped),
                self.errors.clamped.eq(clamped),
            ]
        return m
