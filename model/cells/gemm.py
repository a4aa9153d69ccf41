"""A register-blocked matrix product whose bits do not depend on the batch (numba + LLVM IR).

    panels = pack(w)                        # (K, N) → (ceil(N / PANEL), K, PANEL), once at load
    matmul(x, panels, add, out, threads)    # out[r] = x[r] @ w + add[r], called from Python
    product(x, panels, add, out)            # the same, inside another njit(parallel=True) kernel

Every output element is one chain `acc = fma(x[r, k], w[k, n], acc)`, k ascending from
acc = add[r, n], and nothing else: no separate addition, no fast-math flag.  Whatever block
computes an element, the chain is the same, so a row's bits do not depend on the batch, its place
in it, the thread count or the vector width: AVX2, AVX-512 and NEON give the same bits
(tests/test_gemm.py).  The chain is all `llvm.fma` calls on vectors, which numba's fastmath
rewrite leaves alone, so it stays strict even inside a kernel compiled with fastmath.

The speed is in the blocks.  A block of rows × panels keeps its accumulators in vector registers
for the whole k loop; per k it loads one 64-byte row of each panel, broadcasts each row's x[r, k]
and issues the FMAs.  The loop is written in LLVM IR (`_block`) with the generic `llvm.fma`
vector intrinsic: numba does not vectorise a strict scalar FMA chain.  Block shapes follow the
target's vector width and register count (`SHAPES`); the arithmetic does not.  The threads share
out groups of GROUP panels (`prange`), so a thread owns whole columns and every row block passes
over a group while it sits in L2.  `python -m bench.gemm` measures it against OpenBLAS.
"""

from __future__ import annotations

import platform
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from model.runtime.jit import compiled
from model.runtime.machine import target_features

PANEL = 16  # columns per panel: a 64-byte line per k; one zmm, two ymm or four NEON registers
GROUP = 4  # panels per parallel work item: 256 KB at K = 1024, in L2 while the row blocks pass
ALIGN = 64  # bytes: a panel row never straddles two cache lines
Array = np.ndarray  # float32 and C-contiguous, every one: one compiled signature, one set of bits


def instruction_set() -> str:
    """Which block shapes suit the compile target: avx512, avx2, sse (x86) or simd128 (others)."""
    features = set(target_features().split(","))
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "simd128"  # aarch64's NEON (32 registers); LLVM lowers llvm.fma to fmla
    if "+avx512f" in features:
        return "avx512"
    return "avx2" if {"+avx2", "+fma"} <= features else "sse"


ISA = instruction_set()
LANES = {"avx512": 16, "avx2": 8, "sse": 4, "simd128": 4}[ISA]  # float32 per vector register
# (rows, panels) of the main block, then of the tail blocks of 4, 2 and 1 rows: a batch of B rows
# is B // rows main blocks and the binary digits of the rest.  A block holds rows × panels ×
# PANEL / LANES accumulators, which must leave room for the panel loads and a broadcast in the
# registers (16 on AVX2 and SSE, 32 on AVX-512 and NEON); a lone row gets several panels so that
# enough FMA chains run at once to hide the FMA latency.  Measured on a Xeon (Emerald Rapids),
# one thread: AVX-512 (4, 4) ≥ (6, 4) ≈ (4, 2) > (8, 2); AVX2 (6, 1) ≥ (4, 1) ≈ (3, 2).
SHAPES: tuple[tuple[int, int], ...] = {
    "avx512": ((4, 4), (4, 4), (2, 4), (1, 4)),  # 16 zmm accumulators
    "avx2": ((6, 1), (4, 1), (2, 2), (1, 4)),  # 12 ymm accumulators (BLIS's Haswell 6 × 16)
    "sse": ((2, 1), (2, 1), (2, 1), (1, 2)),  # 8 xmm; without FMA hardware: correct, slow
    "simd128": ((4, 1), (4, 1), (2, 2), (1, 2)),  # 16 NEON accumulators
}[ISA]
MAIN_ROWS = SHAPES[0][0]


def unpacked_columns(n: int) -> int:
    """Columns of `add` and `out` for a product of n columns: n rounded up to whole panels."""
    return -(-n // PANEL) * PANEL


def pack(w: np.ndarray) -> np.ndarray:
    """(K, N) weights → (ceil(N / PANEL), K, PANEL) float32: zero-padded, 64-byte aligned."""
    k, n = w.shape
    count = unpacked_columns(n) // PANEL
    raw = np.zeros(count * k * PANEL + ALIGN // 4, np.float32)
    skip = (-raw.ctypes.data % ALIGN) // 4  # NumPy aligns to 16 bytes only
    panels = raw[skip : skip + count * k * PANEL].reshape(count, k, PANEL)
    padded = np.zeros((k, count * PANEL), np.float32)
    padded[:, :n] = w
    panels[...] = padded.reshape(k, count, PANEL).transpose(1, 0, 2)
    return panels


def _fma(builder: ir.IRBuilder, a: ir.Value, b: ir.Value, c: ir.Value) -> ir.Value:
    """a * b + c, rounded once: the generic llvm.fma (vfmadd on x86, fmla on aarch64)."""
    kind = f"v{a.type.count}f32" if isinstance(a.type, ir.VectorType) else "f32"
    fnty = ir.FunctionType(a.type, [a.type] * 3)
    intrinsic_fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.{kind}")
    return builder.call(intrinsic_fn, [a, b, c])


@intrinsic
def fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """Scalar float32 fma(a, b, c) = a * b + c rounded once: one step of the chain, for references
    (strict in a kernel without fastmath: numba's fastmath puts its flags on scalar calls)."""
    sig = types.float32(types.float32, types.float32, types.float32)
    return sig, lambda context, builder, signature, args: _fma(builder, *args)


def _block(rows: int, group: int) -> Any:
    """An intrinsic block(x, r, panels, p, add, out): out = x @ W + add in rows r .. r + rows and
    the columns of panels p .. p + group, its accumulators (from add) in registers throughout."""
    width = PANEL // LANES  # vectors per panel row
    count = group * width  # vectors per block row

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> None:
        x_ty, _, w_ty, _, add_ty, out_ty = signature.args
        values = (args[0], args[2], args[4], args[5])
        arrays = zip((x_ty, w_ty, add_ty, out_ty), values, strict=True)
        x, w, add, out = (context.make_array(ty)(context, builder, value) for ty, value in arrays)
        r0, p0 = args[1], args[3]  # the first row, the first panel
        i64, vec = ir.IntType(64), ir.VectorType(ir.FloatType(), LANES)
        zero, undef = ir.Constant(i64, 0), ir.Constant(vec, ir.Undefined)
        lane0 = ir.Constant(ir.VectorType(ir.IntType(32), LANES), None)  # splat mask: lane 0 only

        def plus(value: ir.Value, n: int) -> ir.Value:
            return builder.add(value, ir.Constant(i64, n))

        def item(ty: Any, ary: Any, *index: ir.Value) -> ir.Value:  # float*, strides honoured
            return cgutils.get_item_pointer(context, builder, ty, ary, list(index))

        def at(ty: Any, ary: Any, *index: ir.Value) -> ir.Value:  # <LANES x float>*
            return builder.bitcast(item(ty, ary, *index), vec.as_pointer())

        x_rows = [item(x_ty, x, plus(r0, i), zero) for i in range(rows)]
        w_rows = [at(w_ty, w, plus(p0, g), zero, zero) for g in range(group)]
        steps = cgutils.unpack_tuple(builder, w.shape)[1]
        col0 = builder.mul(p0, ir.Constant(i64, PANEL))  # the block's panels are adjacent columns
        cells = [(plus(r0, i), plus(col0, v * LANES)) for i in range(rows) for v in range(count)]
        start = [builder.load(at(add_ty, add, row, col), align=4) for row, col in cells]
        # entry → loop (k = 0 .. K - 1) → done.  The accumulators are phi nodes: registers.
        entry = builder.block
        loop, done = builder.append_basic_block("k_loop"), builder.append_basic_block("k_done")
        builder.cbranch(builder.icmp_signed(">", steps, zero), loop, done)
        builder.position_at_end(loop)
        k = builder.phi(i64)
        acc = [builder.phi(vec) for _ in cells]
        row_k = builder.mul(k, ir.Constant(i64, width))  # in vectors
        w_k = [builder.gep(w_row, [plus(row_k, j)]) for w_row in w_rows for j in range(width)]
        w_k = [builder.load(pointer, align=4) for pointer in w_k]  # unaligned: any `panels`
        new = []
        for i in range(rows):  # one row's broadcast, then its FMAs: few registers live at once
            xk = builder.insert_element(undef, builder.load(builder.gep(x_rows[i], [k])), zero)
            splat = builder.shuffle_vector(xk, undef, lane0)
            new += [_fma(builder, splat, w_k[v], acc[i * count + v]) for v in range(count)]
        k_next = plus(k, 1)
        builder.cbranch(builder.icmp_signed("<", k_next, steps), loop, done)
        k.add_incoming(zero, entry)
        k.add_incoming(k_next, loop)
        builder.position_at_end(done)
        ends = [builder.phi(vec) for _ in cells]  # the chains' ends (add itself when K = 0)
        for first, a, n, end in zip(start, acc, new, ends, strict=True):
            for phi in (a, end):
                phi.add_incoming(first, entry)
                phi.add_incoming(n, loop)
        for (row, col), end in zip(cells, ends, strict=True):
            builder.store(end, at(out_ty, out, row, col), align=4)

    @intrinsic
    def block(typingctx: Any, x: Any, r: Any, panels: Any, p: Any, add: Any, out: Any) -> Any:
        return types.void(x, types.intp, panels, types.intp, add, out), codegen

    return block


_main, _tail4, _tail2, _tail1 = (_block(rows, group) for rows, group in SHAPES)
_STEP = tuple(group for _, group in SHAPES)  # panels per block, each a divisor of GROUP
_lone_main, _lone4, _lone2, _lone1 = (_block(rows, 1) for rows, _ in SHAPES)  # past whole groups
assert all(GROUP % step == 0 for step in _STEP)


@numba.njit(inline="always")
def _rows_over_group(x: Array, panels: Array, p: int, add: Array, out: Array) -> None:
    """Every row of x over panels p .. p + GROUP: main blocks, then tails of 4, 2 and 1 rows."""
    b = x.shape[0]
    r = b - b % MAIN_ROWS
    for q in range(p, p + GROUP, _STEP[0]):
        for s in range(0, r, MAIN_ROWS):
            _main(x, s, panels, q, add, out)
    if b - r >= 4:
        for q in range(p, p + GROUP, _STEP[1]):
            _tail4(x, r, panels, q, add, out)
        r += 4
    if b - r >= 2:
        for q in range(p, p + GROUP, _STEP[2]):
            _tail2(x, r, panels, q, add, out)
        r += 2
    if b - r >= 1:
        for q in range(p, p + GROUP, _STEP[3]):
            _tail1(x, r, panels, q, add, out)


@numba.njit(inline="always")
def _rows_over_panel(x: Array, panels: Array, p: int, add: Array, out: Array) -> None:
    """Every row of x over panel p alone (the last 1 to GROUP - 1 panels)."""
    b = x.shape[0]
    r = b - b % MAIN_ROWS
    for s in range(0, r, MAIN_ROWS):
        _lone_main(x, s, panels, p, add, out)
    if b - r >= 4:
        _lone4(x, r, panels, p, add, out)
        r += 4
    if b - r >= 2:
        _lone2(x, r, panels, p, add, out)
        r += 2
    if b - r >= 1:
        _lone1(x, r, panels, p, add, out)


@numba.njit(inline="always")
def product(x: Array, panels: Array, add: Array, out: Array) -> None:
    """out[r, :] = x[r, :] @ W + add[r, :] for the x.shape[0] rows of x; W packed by `pack`.

    x (B, K); panels (ceil(N / PANEL), K, PANEL); add, out (≥ B, unpacked_columns(N)); add may
    be out.  Contains the prange: call it from a numba.njit(parallel=True) kernel."""
    count = panels.shape[0]
    if x.shape[1] != panels.shape[1] or min(add.shape[0], out.shape[0]) < x.shape[0]:
        raise ValueError("x is (B, K), panels (n, K, PANEL), add and out at least B rows")
    if min(add.shape[1], out.shape[1]) < count * PANEL:
        raise ValueError("add and out need unpacked_columns(N) columns")
    for g in prange(-(-count // GROUP)):
        if (g + 1) * GROUP <= count:
            _rows_over_group(x, panels, g * GROUP, add, out)
        else:
            for p in range(g * GROUP, count):
                _rows_over_panel(x, panels, p, add, out)


SIGNATURE = "void(float32[:, ::1], float32[:, :, ::1], float32[:, ::1], float32[:, ::1])"


@compiled(SIGNATURE, parallel=True)  # at the first call: importing this module compiles nothing
def _matmul(x: Array, panels: Array, add: Array, out: Array) -> None:
    product(x, panels, add, out)


def matmul(x: Array, panels: Array, add: Array, out: Array, threads: int) -> None:
    """`product` from Python on `threads` threads (float32, C-contiguous; see `product`).

    The thread count is set here, not in the kernel: numba cannot cache a kernel that sets it.
    numba keeps it per calling thread, so this changes nothing process-wide."""
    numba.set_num_threads(threads)
    _matmul(x, panels, add, out)
