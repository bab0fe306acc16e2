"""Pooling and cropping of tile grids into fixed-size views: pure JAX with static shapes.

A view maps `size` tiles along each axis onto `cells` output cells (an `AxisPlan` per axis). Cell `i` covers
the tile interval `[(i - offset) * scale, (i - offset + 1) * scale)`; cells outside the grid are empty. A
tile contributes to a cell in proportion to their overlap, so a scale that does not divide the size gives
*fractional windows* (a tile on a cell boundary is shared between two cells), never a strided subsample.

Two poolings, chosen per channel by the observer:
- `pool_sums`: area-weighted mean (the sum of tile values times their overlap, over the cell's area
  `scale_y * scale_x`): area fractions of territory, mean troop densities. A cell partly off the grid counts
  the missing part as zeros, so a fraction is always a share of the whole cell.
- `pool_max`: the largest value of any tile overlapping the cell (point features, front priorities).

Speed: when the scale is an integer that divides the size (the usual power-of-two maps) pooling is a
reshape and an integer sum, rows first. Integer sums vectorise on the CPU (float sums do not: XLA keeps their
order), so several small-valued planes are packed into bit fields of one word and summed together:
1024x1024 to 128x128, two 0/1 planes per byte summed 8 rows at a time, costs about as much as one plane
(several planes to a uint32 word where blocks of more than 16 rows are summed columns first). Other scales use
two separable passes of (cells, taps) gathers with static indices and weights (about (size + cells) * taps
reads per axis).

`crop` cuts a window at a dynamic position with `lax.dynamic_slice` (static size), shifted back inside the
grid at the edges; a grid smaller than the window is padded (statically) and centred in it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.game.grid import first_argmax


@dataclasses.dataclass(frozen=True)
class AxisPlan:
    """How `size` tiles along one axis map onto `cells` output cells (see the module docstring).

    `scale` (tiles per cell, >= 1) is a Fraction so plans are exact and hashable; `offset` is a whole
    number of empty cells before the first covered one (the global view centres a non-square map).
    """

    size: int
    cells: int
    scale: Fraction
    offset: int = 0

    def __post_init__(self) -> None:
        if self.size < 1 or self.cells < 1:
            raise ValueError(f"an axis plan needs size >= 1 and cells >= 1, got {self.size} and {self.cells}")
        object.__setattr__(self, "scale", Fraction(self.scale))
        if self.scale < 1:
            raise ValueError(f"pooling never upsamples: scale must be >= 1 tile per cell, got {self.scale}")

    @property
    def block(self) -> int | None:
        """Tiles per cell when whole blocks tile the grid exactly (the reshape fast path), else None."""
        if self.scale.denominator != 1 or self.size % int(self.scale):
            return None
        block = int(self.scale)
        covered = self.size // block
        return block if 0 <= self.offset and self.offset + covered <= self.cells else None

    @property
    def identity(self) -> bool:
        return self.scale == 1 and self.offset == 0 and self.size == self.cells

    def cell_of(self, position: jax.Array) -> jax.Array:
        """int32 cell holding the centre of tile `position` (may be outside 0..cells-1)."""
        centre = (jnp.asarray(position, jnp.float32) + 0.5) / float(self.scale)
        return jnp.floor(centre).astype(jnp.int32) + self.offset

    def cell_centre(self, cell: jax.Array) -> jax.Array:
        """float32 tile coordinate (continuous, tile t spans [t, t + 1)) of the middle of `cell`."""
        return (jnp.asarray(cell, jnp.float32) - self.offset + 0.5) * float(self.scale)

    def tile_start(self, cell: jax.Array) -> jax.Array:
        """int32 first tile overlapping `cell` (may be negative for empty cells)."""
        return jnp.floor((jnp.asarray(cell, jnp.float32) - self.offset) * float(self.scale)).astype(jnp.int32)

    def taps(self) -> tuple[np.ndarray, np.ndarray]:
        """(index int32[cells, K], weight float32[cells, K]): tiles overlapping each cell and their overlap
        divided by `scale` (weight 0 for padding taps)."""
        return _taps(self.size, self.cells, self.scale, self.offset)


@functools.lru_cache(maxsize=256)
def _taps(size: int, cells: int, scale: Fraction, offset: int) -> tuple[np.ndarray, np.ndarray]:
    count = int(np.ceil(float(scale))) + 1  # a scale-long interval overlaps at most ceil(scale) + 1 tiles
    index = np.zeros((cells, count), np.int32)
    weight = np.zeros((cells, count), np.float32)
    for cell in range(cells):
        low, high = (cell - offset) * scale, (cell - offset + 1) * scale
        first = int(np.floor(float(low)))
        for k in range(count):
            tile = first + k
            overlap = min(high, Fraction(tile + 1)) - max(low, Fraction(tile))
            if 0 <= tile < size and overlap > 0:
                index[cell, k] = tile
                weight[cell, k] = float(overlap / scale)
    return index, weight


def fit_plans(height: int, width: int, cells: int) -> tuple[AxisPlan, AxisPlan]:
    """Plans that fit a whole `height` x `width` grid into `cells` x `cells`, keeping its aspect ratio.

    One scale for both axes (`max(height, width) / cells`, at least 1: small grids are padded, never
    upsampled), so a cell is a square of tiles; the shorter axis is centred with empty cells around it.
    """
    scale = max(Fraction(1), Fraction(max(height, width), cells))

    def plan(size: int) -> AxisPlan:
        return AxisPlan(size, cells, scale, int((cells - Fraction(size) / scale) // 2))

    return plan(height), plan(width)


# ---------------------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------------------


def _pad_cells(x: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan) -> jax.Array:
    """Place block-pooled cells (covered_y, covered_x, ...) at their offsets in (cells_y, cells_x, ...)."""
    pad_y = (plan_y.offset, plan_y.cells - plan_y.offset - x.shape[0])
    pad_x = (plan_x.offset, plan_x.cells - plan_x.offset - x.shape[1])
    if pad_y == (0, 0) and pad_x == (0, 0):
        return x
    return jnp.pad(x, (pad_y, pad_x) + ((0, 0),) * (x.ndim - 2))


def _tap_axis(x: jax.Array, plan: AxisPlan, axis: int, combine: str) -> jax.Array:
    """Pool one axis of a 2-D array with the plan's taps: weighted sum or max over weight > 0."""
    index, weight = plan.taps()
    gathered = jnp.take(x, jnp.asarray(index), axis=axis)  # axis becomes (cells, K)
    shape = [1] * gathered.ndim
    shape[axis], shape[axis + 1] = weight.shape
    weight = jnp.asarray(weight).reshape(shape)
    if combine == "sum":
        return (gathered.astype(jnp.float32) * weight).sum(axis=axis + 1)
    return jnp.where(weight > 0, gathered, jnp.zeros((), gathered.dtype)).max(axis=axis + 1)


def _pack(planes: Sequence[tuple[jax.Array, int]], count: int, word_bits: int = 32
          ) -> list[list[tuple[int, int, int]]]:
    """Bit fields for summing `count` tiles of each plane: per word of at most `word_bits` bits (a wider
    field gets a word of its own), (plane index, shift, bits)."""
    words: list[list[tuple[int, int, int]]] = [[]]
    used = 0
    for i, (_, max_value) in enumerate(planes):
        bits = int(max_value * count).bit_length()
        if bits > 32:
            raise ValueError(f"sums of {count} tiles with values up to {max_value} overflow 32 bits")
        if used + bits > max(word_bits, bits):
            words.append([])
            used = 0
        words[-1].append((i, used, bits))
        used += bits
    return words


def _packed_sums(planes: Sequence[tuple[jax.Array, int]], count: int, reduce, word_bits: int = 32
                 ) -> list[jax.Array]:
    """Sum each plane with `reduce(word) -> summed word`, `count` values per sum, several planes per word
    (words of at most `word_bits` bits, see `_pack`)."""
    results: list[jax.Array | None] = [None] * len(planes)
    for fields in _pack(planes, count, word_bits):
        used = max(shift + bits for _, shift, bits in fields)
        dtype = jnp.uint8 if used <= 8 else jnp.uint16 if used <= 16 else jnp.uint32  # less memory traffic
        word = functools.reduce(jnp.bitwise_or, [planes[i][0].astype(dtype) << dtype(shift)
                                                 for i, shift, _ in fields])
        summed = reduce(word).astype(jnp.uint32)
        for i, shift, bits in fields:
            results[i] = (summed >> shift) & jnp.uint32((1 << bits) - 1)
    return results


def pool_sums(planes: Sequence[tuple[jax.Array, int]], plan_y: AxisPlan, plan_x: AxisPlan) -> jax.Array:
    """Area-weighted means of unsigned-integer tile planes.

    Args:
        planes: (values uint/bool[size_y, size_x], max_value) pairs; `max_value` bounds the values (it sizes
            the bit fields of the packed sums).
    Returns:
        float32[cells_y, cells_x, len(planes)]: per plane, the sum over tiles of value x overlap area,
        / (scale_y scale_x).
    """
    if plan_y.identity and plan_x.identity:
        return jnp.stack([values for values, _ in planes], axis=-1).astype(jnp.float32)
    by, bx = plan_y.block, plan_x.block
    if by is None or bx is None:
        return jnp.stack([_tap_axis(_tap_axis(values, plan_y, 0, "sum"), plan_x, 1, "sum")
                          for values, _ in planes], axis=-1)
    # XLA fuses the packing into the reduction, so the planes should be cheap functions of materialised
    # grids. XLA CPU, measured on a 2-core EPYC: summing rows first (adding whole rows, vectorised along
    # them) is fastest up to 16-row blocks; beyond, XLA's loop for it falls off a cliff (4096 -> 128: 30 ms
    # against 3 ms columns first), so larger blocks sum the contiguous column groups first.
    height, width = planes[0][0].shape
    cells_y, cells_x = height // by, width // bx
    tops = [top for _, top in planes]
    def add(shape, axis):
        return lambda word: word.reshape(shape).sum(axis, dtype=word.dtype)

    if by <= 16:
        # Byte words (two 0/1 planes a byte at 8 rows, one at 16): XLA CPU adds 32 bytes per vector op
        # against 8 uint32 words. The observation at 1024 and 2048 (one core of the EPYC, medians of 40
        # calls): 3.2 -> 2.8 ms and 17.6 -> 8.9 ms. Not for the columns-first sums below: at 4096 byte
        # words need more passes over the map than they save (67 -> 101 ms).
        rows = _packed_sums(planes, by, add((cells_y, by, width), 1), word_bits=8)
        sums = _packed_sums([(r, top * by) for r, top in zip(rows, tops, strict=True)], bx,
                            add((cells_y, cells_x, bx), 2), word_bits=8)
    else:
        cols = _packed_sums(planes, bx, add((height, cells_x, bx), 2))
        sums = _packed_sums([(c, top * bx) for c, top in zip(cols, tops, strict=True)], by,
                            add((cells_y, by, cells_x), 1))
    pooled = jnp.stack(sums, axis=-1).astype(jnp.float32) / float(plan_y.scale * plan_x.scale)
    return _pad_cells(pooled, plan_y, plan_x)


def pool_max(values: jax.Array, plan_y: AxisPlan, plan_x: AxisPlan) -> jax.Array:
    """Largest value of any tile overlapping each cell: [cells_y, cells_x], same dtype (0 for empty cells)."""
    if plan_y.identity and plan_x.identity:
        return values
    by, bx = plan_y.block, plan_x.block
    if by is None or bx is None:
        return _tap_axis(_tap_axis(values, plan_y, 0, "max"), plan_x, 1, "max")
    height, width = values.shape
    if by <= 16:  # the same order as pool_sums
        pooled = values.reshape(height // by, by, width).max(axis=1).reshape(height // by, width // bx, bx)
        pooled = pooled.max(axis=2)
    else:
        pooled = values.reshape(height, width // bx, bx).max(axis=2).reshape(height // by, by, width // bx)
        pooled = pooled.max(axis=1)
    return _pad_cells(pooled, plan_y, plan_x)


def scatter_max(cells_y: jax.Array, cells_x: jax.Array, channel: jax.Array, values: jax.Array,
                shape: tuple[int, int, int]) -> jax.Array:
    """uint8[shape]: the largest of `values` (uint8[N]) landing on each (cell, channel); points outside the
    grid are dropped. For point features: a cell shows the strongest point whose tile centre it holds."""
    inside = (cells_y >= 0) & (cells_y < shape[0]) & (cells_x >= 0) & (cells_x < shape[1])
    flat = jnp.where(inside, (cells_y * shape[1] + cells_x) * shape[2] + channel, math.prod(shape))
    grid = jnp.zeros(math.prod(shape) + 1, jnp.uint8).at[flat].max(values.astype(jnp.uint8))
    return grid[:-1].reshape(shape)


# ---------------------------------------------------------------------------------------------------------
# Cropping
# ---------------------------------------------------------------------------------------------------------


def crop(grid: jax.Array, start: tuple[jax.Array, jax.Array], size: tuple[int, int], fill=0
         ) -> tuple[jax.Array, jax.Array]:
    """A `size` window of `grid` (2-D) starting at `start` (int, dynamic), and where it really starts.

    Per axis: if the grid is at least `size` long, the start is clamped into [0, side - size] (the window is
    shifted back inside the grid, never padded off-centre); otherwise the grid is padded with `fill` and
    centred in the window, which then starts at -((size - side) // 2).

    Returns:
        window: [size_y, size_x], same dtype as `grid`;
        start: int32[2], the grid coordinate of the window's first row and column.
    """
    pads, starts, slice_starts = [], [], []
    for axis in range(2):
        side, want = grid.shape[axis], size[axis]
        if side >= want:
            begin = jnp.clip(jnp.asarray(start[axis], jnp.int32), 0, side - want)
            pads.append((0, 0))
            starts.append(begin)
            slice_starts.append(begin)
        else:
            before = (want - side) // 2
            pads.append((before, want - side - before))
            starts.append(jnp.int32(-before))
            slice_starts.append(jnp.int32(0))
    if any(p != (0, 0) for p in pads):
        grid = jnp.pad(grid, pads, constant_values=fill)
    window = jax.lax.dynamic_slice(grid, slice_starts, size)
    return window, jnp.stack(starts)


def box_argmax(values: jax.Array, box: int) -> tuple[jax.Array, jax.Array]:
    """Top-left corner (int32[2]) of the `box` x `box` window of `values` (2-D) with the largest sum, and
    that sum. Ties go to the first in row-major order.

    Box sums as two matmuls with static 0/1 band matrices: on the CPU, faster than a summed-area table
    (XLA's cumsum is a quadratic reduce_window there) for the 64..256-cell grids it is used on.
    """
    height, width = values.shape
    box_y, box_x = min(box, height), min(box, width)
    band_y = jnp.asarray(_band(height, box_y))
    band_x = jnp.asarray(_band(width, box_x))
    sums = band_y @ values.astype(jnp.float32) @ band_x.T
    flat = first_argmax(sums)  # argmax's order; as two plain reductions (faster on XLA CPU)
    return jnp.stack([flat // sums.shape[1], flat % sums.shape[1]]).astype(jnp.int32), sums.ravel()[flat]


@functools.lru_cache(maxsize=64)
def _band(size: int, box: int) -> np.ndarray:
    """float32[size - box + 1, size]: row i has ones on columns i .. i + box - 1."""
    starts = np.arange(size - box + 1)[:, None]
    columns = np.arange(size)[None, :]
    return ((columns >= starts) & (columns < starts + box)).astype(np.float32)
