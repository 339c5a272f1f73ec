# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""CPU kernels of ``fastrbm.sequences``: sequence weights and pair counts.

Validation, dtype conversion and thread counts are the caller's job
(``sequences.py``); these kernels get C-contiguous typed memoryviews and
release the GIL.  Both are exact for any thread count: the weights count
integers, and each pair count is summed over sequences in one fixed order by
whichever thread owns that pair.
"""
import numpy as np
from cython.parallel cimport prange, threadid
from libc.stdint cimport uint8_t, uint64_t, int32_t, int64_t
from cpython.exc cimport PyErr_CheckSignals

# Rows per parallel region of identity_neighbours: between regions the
# kernel checks for Ctrl-C.  Fixed, so it never changes a result.
cdef enum:
    ROW_CHUNK = 256

cdef uint64_t LOW7 = 0x7F7F7F7F7F7F7F7FULL
cdef uint64_t ONES = 0x0101010101010101ULL


cdef inline int _nonzero_bytes(uint64_t x) noexcept nogil:
    # Number of nonzero bytes of x, without a popcount instruction (portable):
    # the high bit of each byte of y is set iff that byte of x is nonzero, and
    # the multiply sums the eight 0/1 bytes into the top byte.
    cdef uint64_t y = ((x & LOW7) + LOW7) | x
    y = (y >> 7) & ONES
    return <int>((y * ONES) >> 56)


cdef int64_t _row_neighbours(const uint64_t[:, ::1] packed, const int32_t[::1] multiplicity,
                             Py_ssize_t i, int max_mismatch, int64_t *counts) noexcept nogil:
    # Compares row i with every later row j; a match adds row i's multiplicity
    # to counts[j] and row j's to the returned count of row i (pairs are
    # symmetric, so each is compared once).  Zero padding matches itself, so
    # it never adds a mismatch.
    cdef Py_ssize_t n = packed.shape[0], n_words = packed.shape[1], j, w
    # the first `sure` words (8 sites each) cannot exceed max_mismatch: no test
    cdef Py_ssize_t sure = min(max_mismatch // 8, n_words)
    cdef const uint64_t *a = &packed[i, 0]
    cdef const uint64_t *b
    cdef int mismatches
    cdef int64_t found = 0
    for j in range(i + 1, n):
        b = &packed[j, 0]
        mismatches = 0
        for w in range(sure):
            mismatches += _nonzero_bytes(a[w] ^ b[w])
        for w in range(sure, n_words):
            mismatches += _nonzero_bytes(a[w] ^ b[w])
            if mismatches > max_mismatch:
                break
        if mismatches <= max_mismatch:
            counts[j] += multiplicity[i]
            found += multiplicity[j]
    return found


def identity_neighbours(const uint64_t[:, ::1] packed, const int32_t[::1] multiplicity,
                        int max_mismatch, int n_threads):
    """Number of sequences within ``max_mismatch`` differing sites of each row.

    Parameters
    ----------
    packed : ndarray of uint64, shape (n_rows, n_words)
        Distinct byte-coded rows (one byte per site) zero-padded to a
        multiple of 8 bytes and viewed as 64-bit words.
    multiplicity : ndarray of int32, shape (n_rows,)
        How many sequences each row stands for (its copies).
    max_mismatch : int
        Largest number of differing sites at which two rows are neighbours.
    n_threads : int
        OpenMP threads; the result does not depend on it.

    Returns
    -------
    ndarray of int64, shape (n_rows,)
        Sequences within reach of each row, its own copies included.
    """
    cdef Py_ssize_t n = packed.shape[0], start, stop, i
    cdef int t, n_t = max(1, n_threads)
    # one count row per thread, summed at the end: integer sums, so the
    # total is the same however rows were shared among threads
    cdef int64_t[:, ::1] per_thread = np.zeros((n_t, max(n, 1)), dtype=np.int64)
    cdef int64_t *row_counts
    for start in range(0, n, ROW_CHUNK):
        stop = min(start + ROW_CHUNK, n)
        with nogil:
            for i in prange(start, stop, schedule="dynamic", chunksize=4,
                            num_threads=n_t):
                row_counts = &per_thread[threadid(), 0]
                row_counts[i] = row_counts[i] + _row_neighbours(
                    packed, multiplicity, i, max_mismatch, row_counts)
        PyErr_CheckSignals()
    return np.asarray(multiplicity, dtype=np.int64) + np.asarray(per_thread).sum(axis=0)[:n]


cdef void _pair_counts(const uint8_t[:, ::1] columns, const double[::1] weights,
                       Py_ssize_t site_a, Py_ssize_t site_b,
                       double *table, Py_ssize_t q) noexcept nogil:
    # table[x_a * q + x_b] += w over the sequences, in sequence order
    cdef Py_ssize_t n = columns.shape[1], s
    cdef const uint8_t *col_a = &columns[site_a, 0]
    cdef const uint8_t *col_b = &columns[site_b, 0]
    for s in range(n):
        table[col_a[s] * q + col_b[s]] += weights[s]


def pair_counts(const uint8_t[:, ::1] columns, const double[::1] weights,
                const int64_t[::1] site_a, const int64_t[::1] site_b,
                double[:, :, ::1] out, int n_threads):
    """Weighted counts of each pair of categories at each pair of sites.

    Parameters
    ----------
    columns : ndarray of uint8, shape (n_sites, n_sequences)
        The codes, one row per site (the transpose of the alignment).
    weights : ndarray of float64, shape (n_sequences,)
        Weight of each sequence.
    site_a, site_b : ndarray of int64, shape (n_pairs,)
        The two sites of each pair.
    out : ndarray of float64, shape (n_pairs, q, q)
        Zeroed on entry; ``out[p, a, b]`` becomes the total weight of the
        sequences with category ``a`` at ``site_a[p]`` and ``b`` at
        ``site_b[p]``.
    n_threads : int
        OpenMP threads; the result does not depend on it.
    """
    cdef Py_ssize_t n_pairs = out.shape[0], q = out.shape[1], p
    if n_pairs == 0 or columns.shape[1] == 0:
        return
    with nogil:
        for p in prange(n_pairs, schedule="dynamic", chunksize=8,
                        num_threads=max(1, n_threads)):
            _pair_counts(columns, weights, site_a[p], site_b[p], &out[p, 0, 0], q)
