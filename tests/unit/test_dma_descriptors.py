"""UltraScale+ descriptor layouts against cocotbext-pcie's own packing of the same TLPs."""

import random

import pytest
from cocotbext.pcie.core.tlp import CplStatus, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.xilinx.us.interface import UsPcieFrame
from cocotbext.pcie.xilinx.us.tlp import Tlp_us

from amnic.dma.descriptors import (
    CompleterCompletion,
    CompleterRequest,
    RequesterCompletion,
    RequesterRequest,
)

MEM_TYPES = {TlpType.MEM_READ_64: 0, TlpType.MEM_WRITE_64: 1}


def words(layout, fields, count):
    value = layout.const(fields).as_value().value
    return [(value >> (32 * k)) & 0xFFFF_FFFF for k in range(count)]


def random_id(rng):
    return PcieId(rng.randrange(256), rng.randrange(32), rng.randrange(8))


def request(rng, fmt_type):
    tlp = Tlp_us()
    tlp.fmt_type = fmt_type
    tlp.address = rng.getrandbits(62) << 2 | 0
    tlp.length = rng.randrange(1, 1024)
    if fmt_type == TlpType.MEM_WRITE_64:
        tlp.data = bytearray(4 * tlp.length)
    tlp.requester_id = random_id(rng)
    tlp.completer_id = random_id(rng)
    tlp.tag = rng.randrange(256)
    tlp.tc = rng.randrange(8)
    tlp.attr = rng.randrange(8)
    return tlp


@pytest.mark.parametrize("seed", range(20))
def test_requester_request_matches_cocotbext(seed):
    rng = random.Random(seed)
    fmt_type = rng.choice(list(MEM_TYPES))
    tlp = request(rng, fmt_type)
    tlp.requester_id_enable = rng.random() < 0.5
    fields = dict(address=tlp.address >> 2, dword_count=tlp.length,
                  request_type=MEM_TYPES[fmt_type], requester_id=int(tlp.requester_id),
                  tag=tlp.tag, completer_id=int(tlp.completer_id),
                  requester_id_enable=int(tlp.requester_id_enable), traffic_class=tlp.tc,
                  attributes=tlp.attr)
    assert words(RequesterRequest, fields, 4) == tlp.pack_us_rq().data[:4]
    # And back: the model reads our descriptor as the same request.
    frame = UsPcieFrame()
    frame.data = words(RequesterRequest, fields, 4) + [0] * (len(tlp.data) // 4)
    back = Tlp_us.unpack_us_rq(frame)
    assert (back.address, back.length, back.tag, int(back.requester_id)) == (
        tlp.address, tlp.length, tlp.tag, int(tlp.requester_id))


@pytest.mark.parametrize("seed", range(20))
def test_completer_request_matches_cocotbext(seed):
    rng = random.Random(100 + seed)
    fmt_type = rng.choice(list(MEM_TYPES))
    tlp = request(rng, fmt_type)
    tlp.bar_id = rng.randrange(6)
    tlp.bar_aperture = rng.randrange(64)
    fields = dict(address=tlp.address >> 2, dword_count=tlp.length,
                  request_type=MEM_TYPES[fmt_type], requester_id=int(tlp.requester_id),
                  tag=tlp.tag, target_function=tlp.completer_id.function, bar_id=tlp.bar_id,
                  bar_aperture=tlp.bar_aperture, traffic_class=tlp.tc, attributes=tlp.attr)
    assert words(CompleterRequest, fields, 4) == tlp.pack_us_cq().data[:4]


def completion(rng):
    tlp = Tlp_us()
    tlp.fmt_type = TlpType.CPL_DATA
    tlp.length = rng.randrange(1, 1024)
    tlp.data = bytearray(4 * tlp.length)
    tlp.byte_count = rng.randrange(4096)
    tlp.status = rng.choice(list(CplStatus))
    tlp.ep = rng.random() < 0.3
    tlp.requester_id = random_id(rng)
    tlp.completer_id = random_id(rng)
    tlp.tag = rng.randrange(256)
    tlp.tc = rng.randrange(8)
    tlp.attr = rng.randrange(8)
    return tlp


@pytest.mark.parametrize("seed", range(20))
def test_completer_completion_matches_cocotbext(seed):
    rng = random.Random(200 + seed)
    tlp = completion(rng)
    tlp.lower_address = rng.randrange(128)
    tlp.completer_id_enable = rng.random() < 0.5
    fields = dict(lower_address=tlp.lower_address, byte_count=tlp.byte_count,
                  dword_count=tlp.length, status=int(tlp.status), poisoned=int(tlp.ep),
                  requester_id=int(tlp.requester_id), tag=tlp.tag,
                  completer_id=int(tlp.completer_id),
                  completer_id_enable=int(tlp.completer_id_enable), traffic_class=tlp.tc,
                  attributes=tlp.attr)
    assert words(CompleterCompletion, fields, 3) == tlp.pack_us_cc().data[:3]


@pytest.mark.parametrize("seed", range(20))
def test_requester_completion_matches_cocotbext(seed):
    rng = random.Random(300 + seed)
    tlp = completion(rng)
    tlp.lower_address = rng.randrange(4096) & ~3
    tlp.error_code = rng.choice([0, 1, 2, 3, 4, 5, 6, 8, 9])
    tlp.request_completed = rng.random() < 0.5
    fields = dict(lower_address=tlp.lower_address, error_code=tlp.error_code,
                  byte_count=tlp.byte_count, request_completed=int(tlp.request_completed),
                  dword_count=tlp.length, status=int(tlp.status), poisoned=int(tlp.ep),
                  requester_id=int(tlp.requester_id), tag=tlp.tag,
                  completer_id=int(tlp.completer_id), traffic_class=tlp.tc,
                  attributes=tlp.attr)
    assert words(RequesterCompletion, fields, 3) == tlp.pack_us_rc().data[:3]
