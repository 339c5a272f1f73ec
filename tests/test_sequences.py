"""fastrbm.sequences: the FASTA/A2M reader, sequence weights, site statistics.

Independent truths: hand-written expected codes for the reader (the PGM
order spelled out here, not taken from the module), and direct NumPy
computations for weights (all-pairs identity matrix) and frequencies (one-hot
einsum) on small seeded random alignments.
"""
import gzip
import io

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastrbm import _sequences, sequences
from fastrbm.sequences import (connected_correlations, decode, encode, pair_frequencies,
                               pair_indices, read_alignment, sequence_weights,
                               site_frequencies)
from test_docstrings import problems_of

PGM_ORDER = "ACDEFGHIKLMNPQRSTVWY-"


def _expected(strings, order=PGM_ORDER):
    return np.array([[order.index(c) for c in s] for s in strings], dtype=np.uint8)


def _family(rng, n, n_sites, q, n_parents=4, mutation=0.15):
    """Sequences mutated from a few parents, so identities spread over [0, 1]."""
    parents = rng.integers(0, q, size=(n_parents, n_sites))
    codes = parents[rng.integers(0, n_parents, size=n)]
    rate = rng.uniform(0, 2 * mutation, size=(n, 1))
    mutate = rng.random((n, n_sites)) < rate
    codes[mutate] = rng.integers(0, q, size=int(mutate.sum()))
    return codes


def _weights_numpy(codes, identity):
    same = (codes[:, None, :] == codes[None, :, :]).mean(axis=2)
    return 1.0 / (same >= identity).sum(axis=1)


# ---------------------------------------------------------------- reader

def test_reader_headers_wrapping_blank_lines_crlf(tmp_path):
    text = (">>S1 first one\r\nACDEF\r\nGHIK-\r\n\r\n"
            ">>S2\r\n-CDEF\r\n\r\nGHIKL\r\n"
            ">S3\nWY-AC DEFGH\n")
    path = tmp_path / "family.fasta"
    path.write_bytes(text.encode())
    names, codes, alphabet = read_alignment(path)
    assert names == ["S1 first one", "S2", "S3"]
    assert alphabet == PGM_ORDER
    assert codes.dtype == np.uint8 and codes.flags.c_contiguous
    assert_array_equal(codes, _expected(["ACDEFGHIK-", "-CDEFGHIKL", "WY-ACDEFGH"]))


def test_reader_a2m_inserts_dropped_or_kept():
    text = ">a\nAC.D-e\n>b\nACyD-.\n>c\nAC.DYq\n"
    assert_array_equal(read_alignment(io.StringIO(text)).codes,
                       _expected(["ACD-", "ACD-", "ACDY"]))
    kept = read_alignment(io.StringIO(text), inserts="keep").codes
    assert_array_equal(kept, _expected(["AC-D-E", "ACYD--", "AC-DYQ"]))


def test_reader_gzip_and_file_objects(tmp_path):
    # gzip is recognised by its content: the name has no .gz
    path = tmp_path / "seqs.fa"
    path.write_bytes(gzip.compress(b">x\nACGT\n>y\nA-GU\n"))
    with pytest.raises(ValueError, match=r"'y'.*letter 'U' at aligned position 4"):
        read_alignment(path, alphabet="dna")
    with pytest.raises(ValueError, match=r"'x'.*letter 'T' at aligned position 4"):
        read_alignment(str(path), alphabet="rna")
    rna = read_alignment(path, alphabet="rna", unknown="gap")
    assert_array_equal(rna.codes, _expected(["ACG-", "A-GU"], "ACGU-"))
    with open(path, "rb") as fh:
        dna = read_alignment(gzip.GzipFile(fileobj=fh), alphabet="dna", unknown="gap")
    assert_array_equal(dna.codes, _expected(["ACGT", "A-G-"], "ACGT-"))
    assert dna.alphabet == "ACGT-"


def test_reader_unknown_letters():
    text = ">>first\nACDE\n>>second\nACXE\n"
    with pytest.raises(ValueError, match=r"'second' \(number 2\).*'X' at aligned position 3"):
        read_alignment(io.StringIO(text))
    gap = read_alignment(io.StringIO(text), unknown="gap").codes
    assert_array_equal(gap, _expected(["ACDE", "AC-E"]))
    with pytest.raises(ValueError, match="gap symbol"):
        read_alignment(io.StringIO(text), alphabet="ACDEX", unknown="gap")


def test_reader_user_alphabet_and_bytes():
    text = b">r1\n0120\n>r2\n2*10\n"
    names, codes, alphabet = read_alignment(io.BytesIO(text), alphabet="012*")
    assert alphabet == "012*" and names == ["r1", "r2"]
    assert_array_equal(codes, [[0, 1, 2, 0], [2, 3, 1, 0]])


def test_reader_errors():
    with pytest.raises(ValueError, match=r"'b' \(number 2\) has 3 aligned sites.*'a' has 4"):
        read_alignment(io.StringIO(">a\nACDE\n>b\nACD\n"))
    with pytest.raises(ValueError, match="no sequences"):
        read_alignment(io.StringIO("\n\n"))
    with pytest.raises(ValueError, match="line 1.*before the first '>'"):
        read_alignment(io.StringIO("ACDE\n>a\nACDE\n"))
    with pytest.raises(ValueError, match="no aligned sites"):
        read_alignment(io.StringIO(">a\nacde\n>b\n..\n"))
    with pytest.raises(ValueError, match="repeats the symbol 'A'"):
        read_alignment(io.StringIO(">a\nA\n"), alphabet="ACA")
    with pytest.raises(ValueError, match="inserts='drop' removes"):
        read_alignment(io.StringIO(">a\nac\n"), alphabet="acgt")
    with pytest.raises(ValueError, match="unknown must be"):
        read_alignment(io.StringIO(">a\nA\n"), unknown="skip")
    with pytest.raises(TypeError, match="path or an open file"):
        read_alignment(42)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 21, size=(30, 17))
    strings = decode(codes)
    assert strings[0] == "".join(PGM_ORDER[c] for c in codes[0])
    assert_array_equal(encode(strings), codes)
    assert decode(codes[3]) == strings[3]
    assert_array_equal(encode(strings[3]), codes[3])
    assert decode([[0, 3, 4]], alphabet="dna") == ["AT-"]
    with pytest.raises(ValueError, match=r"codes\[0, 1\] = 5 is not a category code in 0..4"):
        decode([[0, 5]], alphabet="dna")


# ---------------------------------------------------------------- weights

@pytest.mark.parametrize("n_sites", [1, 8, 13, 53])
@pytest.mark.parametrize("identity", [0.0, 0.5, 0.8, 0.9, 1.0])
def test_weights_match_numpy(n_sites, identity):
    rng = np.random.default_rng(n_sites)
    codes = _family(rng, 150, n_sites, q=21)
    assert_array_equal(sequence_weights(codes, identity), _weights_numpy(codes, identity))


def test_weights_exact_fraction_thresholds():
    # identity is compared as (identical sites) / n_sites >= identity, so a
    # pair exactly at the threshold counts: 4 of 5 sites is 0.8
    codes = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 0], [0, 1, 2, 0, 0]])
    assert_array_equal(sequence_weights(codes, 0.8), [1 / 2, 1 / 3, 1 / 2])
    assert_array_equal(sequence_weights(codes, 0.6), [1 / 3, 1 / 3, 1 / 3])
    assert_array_equal(sequence_weights(codes, 0.81), [1, 1, 1])


def test_weights_gaps_count_as_sites():
    gap = PGM_ORDER.index("-")
    codes = np.array([[0, gap, gap, gap, gap], [0, gap, gap, gap, 1], [5, 6, 7, 8, 9]])
    assert_array_equal(sequence_weights(codes, 0.8), [1 / 2, 1 / 2, 1])


def test_weights_edge_cases():
    assert_array_equal(sequence_weights([[3, 1, 4]]), [1.0])
    same = np.tile(np.arange(11), (7, 1))
    assert_array_equal(sequence_weights(same, 1.0), np.full(7, 1 / 7))
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 21, size=(40, 9))
    assert_array_equal(sequence_weights(codes, 0.0), np.full(40, 1 / 40))
    dup = np.vstack([codes, codes[:5]])
    expected = np.ones(45)
    expected[[0, 1, 2, 3, 4, 40, 41, 42, 43, 44]] = 0.5
    distinct = np.unique(codes, axis=0).shape[0] == 40
    assert distinct
    assert_array_equal(sequence_weights(dup, 1.0), expected)
    assert sequence_weights(np.zeros((0, 5), dtype=np.uint8)).shape == (0,)


def test_weights_any_integer_dtype():
    rng = np.random.default_rng(2)
    codes = _family(rng, 60, 20, q=21)
    ref = sequence_weights(codes.astype(np.uint8))
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint16):
        assert_array_equal(sequence_weights(codes.astype(dtype)), ref)


def test_weights_same_for_any_thread_count():
    rng = np.random.default_rng(3)
    codes = _family(rng, 700, 53, q=21)
    codes[600:] = codes[:100]  # copies, merged before the kernel
    packed = np.zeros((700, 56), dtype=np.uint8)
    packed[:, :53] = codes
    words = packed.view(np.uint64)
    ones = np.ones(700, dtype=np.int32)
    counts = [_sequences.identity_neighbours(words, ones, 10, t) for t in (1, 2, 3, 8)]
    for other in counts[1:]:
        assert_array_equal(other, counts[0])
    assert_array_equal(1.0 / counts[0], _weights_numpy(codes, 43 / 53))
    for n_jobs in (1, 2, -1, None):
        assert_array_equal(sequence_weights(codes, 0.8, n_jobs=n_jobs), 1.0 / counts[0])
    # distinct rows standing for their copies give each copy the same count
    distinct, which, copies = np.unique(packed, axis=0, return_inverse=True,
                                        return_counts=True)
    for threads in (1, 2, 3, 8):
        merged = _sequences.identity_neighbours(
            np.ascontiguousarray(distinct).view(np.uint64), copies.astype(np.int32), 10,
            threads)
        assert_array_equal(merged[which.ravel()], counts[0])


def test_weights_errors():
    with pytest.raises(ValueError, match=r"identity must be a number in \[0, 1\]"):
        sequence_weights([[0, 1]], identity=1.5)
    with pytest.raises(ValueError, match="must be 2-D"):
        sequence_weights([0, 1, 2])
    with pytest.raises(TypeError, match="integer category codes"):
        sequence_weights([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"codes\[1, 0\] = 256 is not a category code in 0..255"):
        sequence_weights([[0, 1], [256, 2]])
    with pytest.raises(ValueError, match="n_jobs"):
        sequence_weights([[0, 1]], n_jobs=0)


# ---------------------------------------------------------------- frequencies

def _one_hot(codes, q):
    return np.eye(q)[codes]


@pytest.mark.parametrize("weighted", [False, True])
def test_site_and_pair_frequencies_match_numpy(weighted):
    rng = np.random.default_rng(4)
    q, n_sites = 5, 7
    codes = _family(rng, 90, n_sites, q)
    w = rng.uniform(0.1, 2.0, size=90) if weighted else np.ones(90)
    onehot = _one_hot(codes, q)
    f1 = np.einsum("n,nia->ia", w, onehot) / w.sum()
    f2 = np.einsum("n,nia,njb->ijab", w, onehot, onehot) / w.sum()
    a, b = np.triu_indices(n_sites, k=1)
    weights = w if weighted else None
    if weighted:
        assert_allclose(site_frequencies(codes, q, weights), f1, rtol=1e-12, atol=1e-15)
        assert_allclose(pair_frequencies(codes, q, weights), f2[a, b], rtol=1e-12, atol=1e-15)
    else:  # counts of whole numbers: exact in any summation order
        assert_array_equal(site_frequencies(codes, q), f1)
        assert_array_equal(pair_frequencies(codes, q), f2[a, b])
    cc = connected_correlations(codes, q, weights)
    assert_allclose(cc, f2[a, b] - f1[a, :, None] * f1[b, None, :], rtol=1e-12, atol=1e-15)
    # each block of connected correlations sums to zero along either axis
    assert_allclose(cc.sum(axis=2), 0, atol=1e-14)
    assert_allclose(cc.sum(axis=1), 0, atol=1e-14)


def test_pair_frequencies_same_for_any_thread_count():
    rng = np.random.default_rng(5)
    codes = _family(rng, 300, 23, q=21)
    w = rng.uniform(0, 1, size=300)
    runs = [pair_frequencies(codes, 21, w, n_jobs=1)]
    site_a, site_b = pair_indices(23)
    for threads in (2, 3, 8):
        out = np.zeros_like(runs[0])
        _sequences.pair_counts(np.ascontiguousarray(codes.T, dtype=np.uint8), w,
                               site_a, site_b, out, threads)
        runs.append(out / w.sum())
    for other in runs[1:]:
        assert_array_equal(other, runs[0])


def test_pair_indices_order():
    site_a, site_b = pair_indices(4)
    assert list(zip(site_a.tolist(), site_b.tolist())) == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert pair_indices(1)[0].shape == (0,)
    assert pair_frequencies([[1], [0]], 2).shape == (0, 2, 2)


def test_frequency_errors():
    with pytest.raises(ValueError, match=r"codes\[0, 1\] = 3 is not a category code in 0..2"):
        site_frequencies([[0, 3]], 3)
    with pytest.raises(ValueError, match="weights must have shape \\(2,\\)"):
        site_frequencies([[0, 1], [1, 0]], 2, weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        pair_frequencies([[0, 1], [1, 0]], 2, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="not all be zero"):
        connected_correlations([[0, 1], [1, 0]], 2, weights=[0.0, 0.0])
    with pytest.raises(ValueError, match="at most 256 categories"):
        pair_frequencies([[0, 1]], 300)
    with pytest.raises(ValueError, match="n_categories must be a positive integer"):
        site_frequencies([[0, 1]], 0)
    # site frequencies have no category limit
    assert site_frequencies([[299, 0]], 300).shape == (2, 300)


def test_public_docstrings():
    problems = []
    for name in sequences.__all__:
        obj = getattr(sequences, name)
        if callable(obj):
            problems += problems_of(f"sequences.{name}", obj)
    assert not problems, "\n".join(problems)
