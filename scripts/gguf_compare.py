#!/usr/bin/python3
"""Compare the tensors of two GGUF files: names, shapes, types and data bytes.

An independent reader (Python, no hearth code), used to check `hearth quantize` against
llama-quantize on the same input:
    scripts/gguf_compare.py hearth-q4_k_m.gguf llama-q4_k_m.gguf
Exit status 0 when every tensor matches in type and bytes.
"""
import mmap
import struct
import sys

# ggml type id -> (name, elements per block, bytes per block), for the types hearth writes.
TYPES = {0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20), 6: ("q5_0", 32, 22),
         7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 10: ("q2_K", 256, 84), 11: ("q3_K", 256, 110),
         12: ("q4_K", 256, 144), 13: ("q5_K", 256, 176), 14: ("q6_K", 256, 210), 20: ("iq4_nl", 32, 18),
         23: ("iq4_xs", 256, 136), 30: ("bf16", 1, 2)}
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value[0]

    def string(self):
        n = self.take("Q")
        s = bytes(self.data[self.pos:self.pos + n]).decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, kind):
        if kind == 8:
            return self.string()
        if kind == 9:
            item_kind, count = self.take("I"), self.take("Q")
            return [self.value(item_kind) for _ in range(count)]
        return self.take(SCALAR[kind])


def read_gguf(path):
    f = open(path, "rb")
    data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    r = Reader(data)
    assert r.take("I") == 0x46554747, f"{path}: not a GGUF file"
    version, n_tensors, n_kv = r.take("I"), r.take("Q"), r.take("Q")
    metadata = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.take("I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("Q") for _ in range(r.take("I"))]
        infos.append((name, dims, r.take("I"), r.take("Q")))
    alignment = metadata.get("general.alignment", 32)
    data_start = (r.pos + alignment - 1) // alignment * alignment
    tensors = {}
    for name, dims, kind, offset in infos:
        _, block_elems, block_bytes = TYPES[kind]
        elements = 1
        for d in dims:
            elements *= d
        size = elements // block_elems * block_bytes
        tensors[name] = (dims, kind, data[data_start + offset:data_start + offset + size])
    return version, metadata, [i[0] for i in infos], tensors


def main(a_path, b_path):
    _, meta_a, order_a, a = read_gguf(a_path)
    _, meta_b, order_b, b = read_gguf(b_path)
    problems = 0
    if order_a != order_b:
        print("tensor order differs")
        problems += 1
    for name in order_a:
        if name not in b:
            print(f"{name}: missing from {b_path}")
            problems += 1
            continue
        dims_a, kind_a, data_a = a[name]
        dims_b, kind_b, data_b = b[name]
        same = dims_a == dims_b and kind_a == kind_b and data_a == data_b
        status = "identical" if same else "DIFFERENT"
        print(f"{name:36s} {TYPES[kind_a][0]:>7s} {TYPES[kind_b][0]:>7s}  {status}")
        problems += 0 if same else 1
    for key in ("general.file_type", "general.quantization_version"):
        if meta_a.get(key) != meta_b.get(key):
            print(f"metadata {key}: {meta_a.get(key)} vs {meta_b.get(key)}")
            problems += 1
    print(f"{len(order_a)} tensors compared, {problems} differences")
    return 0 if problems == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
