"""Sequence data: aligned FASTA/A2M files, sequence weights, site statistics.

The tools around models of sequences (protein families, DNA, RNA) over an
alphabet of ``q`` symbols: :func:`read_alignment` reads a multiple sequence
alignment into an integer-coded array of shape ``(n_sequences, n_sites)``,
:func:`decode` turns codes back into strings, :func:`sequence_weights`
down-weights near-duplicate sequences, and :func:`site_frequencies`,
:func:`pair_frequencies` and :func:`connected_correlations` give the one- and
two-site statistics that sequence models are judged by (data against samples).

Alphabets: ``"protein"`` is ``ACDEFGHIKLMNPQRSTVWY-``: the 20 amino acids in the
alphabetical order of their one-letter codes, then the gap ``-`` (code 20), the
order of the PGM package (Tubiana, Cocco & Monasson).  DsysDML's ``rbms`` puts
the gap first (``-ACDEFGHIKLMNPQRSTVWY``); pass that string as ``alphabet``
for its codes.  ``"dna"`` is ``ACGT-`` and ``"rna"`` ``ACGU-``.  Any string
of distinct printable ASCII characters is an alphabet too; the gap is ``-``
wherever it is.
"""
import numbers
import os
import string
from typing import NamedTuple

import numpy as np

from ._backend import resolve_n_threads
from .datasets import _open_maybe_gzip

__all__ = ["ALPHABETS", "GAP", "Alignment", "read_alignment", "encode", "decode",
           "sequence_weights", "site_frequencies", "pair_frequencies",
           "connected_correlations", "pair_indices"]

ALPHABETS = {
    "protein": "ACDEFGHIKLMNPQRSTVWY-",
    "dna": "ACGT-",
    "rna": "ACGU-",
}
GAP = "-"

# the compiled kernels read one byte per site
_MAX_COMPILED_CATEGORIES = 256
_UNKNOWN = 255
_WHITESPACE = string.whitespace.encode()
_INSERTS = string.ascii_lowercase.encode() + b"."


class Alignment(NamedTuple):
    """A multiple sequence alignment read by :func:`read_alignment`.

    A named tuple, so ``names, codes, alphabet = read_alignment(path)`` works;
    the fields are also attributes of the same names.

    Parameters
    ----------
    names : list of str
        The header of each sequence, without its leading ``>`` characters.
    codes : ndarray of uint8, shape (n_sequences, n_sites)
        ``codes[s, i]`` is the position in ``alphabet`` of the symbol of
        sequence ``s`` at aligned site ``i``.
    alphabet : str
        The symbols, in code order (``len(alphabet)`` is the number of
        categories ``q``).
    """

    names: list
    codes: np.ndarray
    alphabet: str


def _resolve_alphabet(alphabet):
    if not isinstance(alphabet, str):
        raise TypeError(f"alphabet must be a string, got {type(alphabet).__name__}")
    if alphabet in ALPHABETS:
        return ALPHABETS[alphabet]
    if len(alphabet) < 2:
        raise ValueError(f"alphabet must be one of {sorted(ALPHABETS)} or a string of at "
                         f"least 2 symbols, got {alphabet!r}")
    bad = [c for c in alphabet if not (c.isascii() and c.isprintable()) or c.isspace()
           or c == ">"]
    if bad:
        raise ValueError(f"alphabet symbols must be printable ASCII other than space and "
                         f"'>', got {bad[0]!r} in {alphabet!r}")
    repeated = sorted({c for c in alphabet if alphabet.count(c) > 1})
    if repeated:
        raise ValueError(f"alphabet {alphabet!r} repeats the symbol {repeated[0]!r}")
    return alphabet


def _lookup_table(symbols, inserts, unknown):
    # byte -> code; _UNKNOWN marks a byte that is not in the alphabet
    table = np.full(256, _UNKNOWN, dtype=np.uint8)
    for code, symbol in enumerate(symbols):
        table[ord(symbol)] = code
    if inserts == "keep":
        # A2M insert columns read as match columns: lower case as upper case,
        # '.' (a gap in an insert column) as the gap
        for lower in string.ascii_lowercase:
            if lower not in symbols:
                table[ord(lower)] = table[ord(lower.upper())]
        if "." not in symbols and GAP in symbols:
            table[ord(".")] = symbols.index(GAP)
    if unknown == "gap":
        table[table == _UNKNOWN] = symbols.index(GAP)
    return table


def _check_options(symbols, inserts, unknown):
    if inserts not in ("drop", "keep"):
        raise ValueError(f"inserts must be 'drop' or 'keep', got {inserts!r}")
    if unknown not in ("error", "gap"):
        raise ValueError(f"unknown must be 'error' or 'gap', got {unknown!r}")
    if unknown == "gap" and GAP not in symbols:
        raise ValueError(f"unknown='gap' needs the gap symbol {GAP!r} in the alphabet "
                         f"{symbols!r}")
    if inserts == "drop":
        dropped = [c for c in symbols if c.islower() or c == "."]
        if dropped:
            raise ValueError(f"alphabet {symbols!r} has the symbol {dropped[0]!r}, which "
                             f"inserts='drop' removes as an A2M insert; use upper-case "
                             f"symbols or inserts='keep'")


def _encode_rows(rows, names, table, symbols):
    # rows: list of bytes, all of one length; the caller checked the lengths
    n_sites = len(rows[0]) if rows else 0
    codes = table[np.frombuffer(b"".join(rows), dtype=np.uint8)].reshape(len(rows), n_sites)
    bad = np.flatnonzero(codes.ravel() == _UNKNOWN)
    if bad.size:
        row, site = divmod(int(bad[0]), n_sites)
        letter = chr(rows[row][site])
        raise ValueError(f"sequence {names[row]!r} (number {row + 1}) has the letter "
                         f"{letter!r} at aligned position {site + 1}, which is not in the "
                         f"alphabet {symbols!r}; pass unknown='gap' to read unknown "
                         f"letters as the gap")
    return np.ascontiguousarray(codes)


def _check_lengths(rows, names):
    if not rows:
        raise ValueError("the alignment has no sequences")
    first = len(rows[0])
    for k, row in enumerate(rows):
        if len(row) != first:
            raise ValueError(f"sequence {names[k]!r} (number {k + 1}) has {len(row)} "
                             f"aligned sites, but the first sequence {names[0]!r} has "
                             f"{first}: the sequences are not aligned")
    if first == 0:
        raise ValueError(f"the sequences have no aligned sites (the first is "
                         f"{names[0]!r})")


def _read_bytes(source):
    if isinstance(source, (str, os.PathLike)):
        with _open_maybe_gzip(source) as fh:
            return fh.read()
    if not hasattr(source, "read"):
        raise TypeError(f"read_alignment reads a path or an open file, got "
                        f"{type(source).__name__}")
    data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _parse_fasta(data, inserts):
    names, rows, chunks = [], [], None
    for number, line in enumerate(data.splitlines(), start=1):
        if line.startswith(b">"):
            if chunks is not None:
                rows.append(b"".join(chunks))
            names.append(line.lstrip(b">").strip().decode("utf-8", errors="replace"))
            chunks = []
            continue
        line = line.translate(None, _WHITESPACE)
        if not line:
            continue
        if chunks is None:
            raise ValueError(f"line {number} holds sequence letters before the first "
                             f"'>' header: this is not a FASTA/A2M file")
        chunks.append(line.translate(None, _INSERTS) if inserts == "drop" else line)
    if chunks is not None:
        rows.append(b"".join(chunks))
    return names, rows


def read_alignment(source, alphabet="protein", unknown="error", inserts="drop"):
    """Read an aligned FASTA or A2M file into integer codes.

    Each record is a header line starting with ``>`` (``>>`` and more are
    accepted; the name is the rest of the line) followed by sequence lines,
    which may be wrapped.  Blank lines, white space inside sequence lines and
    Windows line endings are ignored; a gzip-compressed file (recognised by
    its content, not its name) is read as well.

    Parameters
    ----------
    source : str, path-like or file object
        The file: a path, or an object with ``read()`` returning text or bytes.
    alphabet : str, default="protein"
        ``"protein"``, ``"dna"``, ``"rna"`` (see the module's description for
        the code orders) or a string of distinct symbols in code order.
    unknown : {"error", "gap"}, default="error"
        A letter that is not in the alphabet: ``"error"`` raises a
        ValueError naming the sequence and the 1-based aligned position;
        ``"gap"`` reads it as the gap ``-`` (the alphabet must have one).
    inserts : {"drop", "keep"}, default="drop"
        ``"drop"`` follows A2M/A3M: lower-case letters and ``.`` are insert
        columns and are removed, so that upper-case letters and ``-`` remain.
        ``"keep"`` keeps them: a lower-case letter that is not in the
        alphabet reads as its upper-case form and ``.`` as the gap.

    Returns
    -------
    Alignment
        Named tuple ``(names, codes, alphabet)``: the headers, the codes as a
        C-contiguous uint8 array of shape (n_sequences, n_sites), and the
        alphabet as a string.

    Raises
    ------
    ValueError
        If the file has no sequences, text before the first header, sequences
        of different aligned lengths (the first one that differs is named),
        or an unknown letter with ``unknown="error"``.

    Examples
    --------
    >>> import io
    >>> from fastrbm.sequences import read_alignment
    >>> names, codes, alphabet = read_alignment(io.StringIO(">a\\nAC-\\n>b\\nAdCY\\n"))
    >>> names, codes.tolist()
    (['a', 'b'], [[0, 1, 20], [0, 1, 19]])
    """
    symbols = _resolve_alphabet(alphabet)
    _check_options(symbols, inserts, unknown)
    names, rows = _parse_fasta(_read_bytes(source), inserts)
    _check_lengths(rows, names)
    codes = _encode_rows(rows, names, _lookup_table(symbols, inserts, unknown), symbols)
    return Alignment(names, codes, symbols)


def encode(sequences, alphabet="protein", unknown="error"):
    """Integer codes of aligned sequences given as strings.

    Parameters
    ----------
    sequences : str or sequence of str
        One sequence, or several of the same length.
    alphabet : str, default="protein"
        As in :func:`read_alignment`.
    unknown : {"error", "gap"}, default="error"
        As in :func:`read_alignment`.

    Returns
    -------
    ndarray of uint8
        Shape (n_sites,) for one string, (n_sequences, n_sites) for several.

    Examples
    --------
    >>> from fastrbm.sequences import encode
    >>> encode(["ACGT", "A-GT"], alphabet="dna").tolist()
    [[0, 1, 2, 3], [0, 4, 2, 3]]
    """
    symbols = _resolve_alphabet(alphabet)
    _check_options(symbols, "keep", unknown)
    single = isinstance(sequences, str)
    strings = [sequences] if single else list(sequences)
    for k, seq in enumerate(strings):
        if not isinstance(seq, str):
            raise TypeError(f"sequence number {k + 1} is a {type(seq).__name__}, not a str")
    names = [f"number {k + 1}" for k in range(len(strings))]
    rows = [seq.encode("ascii", errors="replace") for seq in strings]
    _check_lengths(rows, names)
    table = np.full(256, _UNKNOWN, dtype=np.uint8)
    for code, symbol in enumerate(symbols):
        table[ord(symbol)] = code
    if unknown == "gap":
        table[table == _UNKNOWN] = symbols.index(GAP)
    codes = _encode_rows(rows, names, table, symbols)
    return codes[0] if single else codes


def decode(codes, alphabet="protein"):
    """Strings of integer-coded sequences: the inverse of :func:`encode`.

    Parameters
    ----------
    codes : array-like of int, shape (n_sites,) or (n_sequences, n_sites)
        Codes in ``0 .. len(alphabet) - 1``.
    alphabet : str, default="protein"
        As in :func:`read_alignment`.

    Returns
    -------
    str or list of str
        One string for a 1-D ``codes``, a list for a 2-D one.

    Examples
    --------
    >>> from fastrbm.sequences import decode
    >>> decode([[0, 1, 20], [0, 1, 19]])
    ['AC-', 'ACY']
    """
    symbols = _resolve_alphabet(alphabet)
    arr = np.asarray(codes)
    if arr.ndim not in (1, 2):
        raise ValueError(f"codes must be 1-D or 2-D, got shape {arr.shape}")
    codes2d = _check_codes(arr.reshape(1, -1) if arr.ndim == 1 else arr, len(symbols))
    letters = np.frombuffer(symbols.encode("ascii"), dtype=np.uint8)[codes2d]
    strings = [row.tobytes().decode("ascii") for row in letters]
    return strings[0] if arr.ndim == 1 else strings


def _check_codes(codes, n_categories, name="codes"):
    """Validated codes as a C-contiguous array of the smallest unsigned type."""
    if isinstance(n_categories, bool) or not isinstance(n_categories, (int, np.integer)) \
            or n_categories < 1:
        raise ValueError(f"n_categories must be a positive integer, got {n_categories!r}")
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_sequences, n_sites), got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integer category codes, got dtype {arr.dtype}")
    if arr.size:
        bad = np.flatnonzero((arr < 0) | (arr >= n_categories))
        if bad.size:
            row, site = np.unravel_index(bad[0], arr.shape)
            raise ValueError(f"{name}[{row}, {site}] = {arr[row, site]} is not a category "
                             f"code in 0..{n_categories - 1}")
    dtype = np.uint8 if n_categories <= 256 else np.min_scalar_type(n_categories - 1)
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_weights(weights, n_sequences):
    if weights is None:
        return np.ones(n_sequences, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_sequences,):
        raise ValueError(f"weights must have shape ({n_sequences},), one per sequence, got "
                         f"{w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if not w.sum() > 0:
        raise ValueError("weights must not all be zero")
    return np.ascontiguousarray(w)


def _compiled_codes(codes, n_categories, name="codes"):
    if n_categories > _MAX_COMPILED_CATEGORIES:
        raise ValueError(f"at most {_MAX_COMPILED_CATEGORIES} categories are supported "
                         f"here, got n_categories={n_categories}")
    return _check_codes(codes, n_categories, name)


def _min_matches(identity, n_sites):
    # Smallest number of identical sites m with m / n_sites >= identity, by
    # the same float division as the definition, so that the kernel's integer
    # test agrees with it exactly.
    for m in range(n_sites + 1):
        if m / n_sites >= identity:
            return m
    return n_sites + 1


def sequence_weights(codes, identity=0.8, n_jobs=None):
    """Weights that down-weight near-duplicate sequences (the identity rule).

    The weight of sequence ``s`` is ``1 / n_s``, where ``n_s`` counts the
    sequences (``s`` included) whose fraction of identical sites with ``s``
    is at least ``identity``.  The fraction is over all ``n_sites`` aligned
    sites, gaps included: a gap facing a gap is identical, a gap facing a
    letter is not.  This is the rule of DsysDML's ``rbms`` (``compute_weights``)
    and of the DCA literature's usual ``1 / n_s`` reweighting; the PGM package
    counts the same fraction over all sites but strictly above the threshold
    (differing fraction below ``1 - identity``), which differs only for pairs
    exactly at it.  Gaps count as sites because the fraction then depends only
    on the aligned codes, not on which symbol is the gap.

    Parameters
    ----------
    codes : array-like of int, shape (n_sequences, n_sites)
        Integer-coded aligned sequences (any integer dtype, values below 256).
    identity : float, default=0.8
        The identity threshold, in [0, 1].  ``1.0`` counts only identical
        sequences; ``0.0`` counts every sequence (all weights ``1 / n``).
    n_jobs : int or None, default=None
        Threads, as in the estimators; the result does not depend on it.

    Returns
    -------
    ndarray of float64, shape (n_sequences,)
        The weights; their sum is the effective number of sequences.

    Notes
    -----
    Copies of a sequence are merged first; a compiled OpenMP kernel then
    compares each pair of distinct sequences once, eight sites per 64-bit
    word, and stops as soon as a pair has too many differing sites.  It
    counts integers, so the weights are identical for any number of threads.

    Examples
    --------
    >>> from fastrbm.sequences import sequence_weights
    >>> sequence_weights([[0, 1, 2, 3, 4], [0, 1, 2, 3, 0], [4, 3, 2, 1, 0]]).tolist()
    [0.5, 0.5, 1.0]
    """
    from . import _sequences

    # identity compares codes only: any code below 256 will do
    arr = _compiled_codes(codes, _MAX_COMPILED_CATEGORIES)
    if isinstance(identity, bool) or not isinstance(identity, numbers.Real) \
            or not 0.0 <= float(identity) <= 1.0:
        raise ValueError(f"identity must be a number in [0, 1], got {identity!r}")
    n_sequences, n_sites = arr.shape
    if n_sequences == 0:
        return np.zeros(0, dtype=np.float64)
    if n_sites == 0:
        raise ValueError("codes has no sites (shape (n_sequences, 0))")
    max_mismatch = n_sites - _min_matches(float(identity), n_sites)
    n_words = -(-n_sites // 8)
    packed = np.zeros((n_sequences, n_words * 8), dtype=np.uint8)
    packed[:, :n_sites] = arr
    # copies of a sequence are each other's neighbours at any identity: the
    # kernel compares distinct rows only, each standing for its copies
    distinct, which, copies = np.unique(packed.view(f"V{n_words * 8}").ravel(),
                                        return_inverse=True, return_counts=True)
    words = np.ascontiguousarray(distinct).view(np.uint64).reshape(-1, n_words)
    threads = min(resolve_n_threads(n_jobs), words.shape[0])
    counts = _sequences.identity_neighbours(words, copies.astype(np.int32), max_mismatch,
                                            threads)
    return 1.0 / counts[which.ravel()]


def pair_indices(n_sites):
    """The two sites of each pair, in the order of :func:`pair_frequencies`.

    Parameters
    ----------
    n_sites : int
        Number of sites ``L``.

    Returns
    -------
    site_a, site_b : ndarray of int64, shape (L * (L - 1) / 2,)
        Pair ``p`` is sites ``(site_a[p], site_b[p])`` with ``site_a < site_b``,
        in row-major order (``numpy.triu_indices(L, k=1)``).
    """
    site_a, site_b = np.triu_indices(int(n_sites), k=1)
    return site_a.astype(np.int64), site_b.astype(np.int64)


def site_frequencies(codes, n_categories, weights=None):
    """Weighted frequency of each category at each site.

    Parameters
    ----------
    codes : array-like of int, shape (n_sequences, n_sites)
        Integer-coded sequences with values in ``0 .. n_categories - 1``.
    n_categories : int
        Number of categories ``q`` (the alphabet's length).
    weights : array-like of float, shape (n_sequences,), optional
        Non-negative weight of each sequence (for example
        :func:`sequence_weights`); all ones when omitted.

    Returns
    -------
    ndarray of float64, shape (n_sites, n_categories)
        ``f[i, a]``: the weighted fraction of sequences with category ``a`` at
        site ``i``; each row sums to 1.
    """
    arr = _check_codes(codes, n_categories)
    n_sequences, n_sites = arr.shape
    if n_sequences == 0:
        raise ValueError("codes has no sequences")
    w = _check_weights(weights, n_sequences)
    # one bincount over (site, category) bins, summed in sequence order
    bins = arr.astype(np.int64) + np.arange(n_sites, dtype=np.int64) * n_categories
    counts = np.bincount(bins.ravel(), weights=np.repeat(w, n_sites),
                         minlength=n_sites * n_categories)
    return counts.reshape(n_sites, n_categories) / w.sum()


def pair_frequencies(codes, n_categories, weights=None, n_jobs=None):
    """Weighted joint frequency of each pair of categories at each pair of sites.

    Parameters
    ----------
    codes : array-like of int, shape (n_sequences, n_sites)
        Integer-coded sequences with values in ``0 .. n_categories - 1``
        (at most 256 categories).
    n_categories : int
        Number of categories ``q``.
    weights : array-like of float, shape (n_sequences,), optional
        Non-negative weight of each sequence; all ones when omitted.
    n_jobs : int or None, default=None
        Threads; the result does not depend on it.

    Returns
    -------
    ndarray of float64, shape (n_pairs, n_categories, n_categories)
        ``f[p, a, b]``: the weighted fraction of sequences with category ``a``
        at site ``site_a[p]`` and ``b`` at ``site_b[p]``, for the
        ``n_pairs = L * (L - 1) / 2`` pairs of distinct sites in the order of
        :func:`pair_indices` (the diagonal ``i == j`` is
        :func:`site_frequencies` and is left out).
    """
    from . import _sequences

    arr = _compiled_codes(codes, n_categories)
    n_sequences, n_sites = arr.shape
    if n_sequences == 0:
        raise ValueError("codes has no sequences")
    w = _check_weights(weights, n_sequences)
    site_a, site_b = pair_indices(n_sites)
    out = np.zeros((site_a.size, n_categories, n_categories), dtype=np.float64)
    threads = min(resolve_n_threads(n_jobs), max(1, site_a.size))
    _sequences.pair_counts(np.ascontiguousarray(arr.T), w, site_a, site_b, out, threads)
    out /= w.sum()
    return out


def connected_correlations(codes, n_categories, weights=None, n_jobs=None):
    """Connected two-site correlations ``f_ij(a, b) - f_i(a) f_j(b)``.

    The statistic that sequence models are usually checked on: compute it
    on the data and on the model's samples, and compare the two (for example
    by their Pearson correlation over all entries).

    Parameters
    ----------
    codes, n_categories, weights, n_jobs
        As for :func:`pair_frequencies`.

    Returns
    -------
    ndarray of float64, shape (n_pairs, n_categories, n_categories)
        One ``q x q`` block per pair of distinct sites, in the order of
        :func:`pair_indices`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm.sequences import connected_correlations
    >>> c = connected_correlations([[0, 0], [1, 1]], 2)
    >>> c.shape, c[0].tolist()
    ((1, 2, 2), [[0.25, -0.25], [-0.25, 0.25]])
    """
    single = site_frequencies(codes, n_categories, weights)
    pairs = pair_frequencies(codes, n_categories, weights, n_jobs)
    site_a, site_b = pair_indices(single.shape[0])
    return pairs - single[site_a, :, None] * single[site_b, None, :]
