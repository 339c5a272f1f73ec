"""Every public class, function and method has a numpydoc docstring.

"Public" is what the API reference documents: the names in ``fastrbm.__all__``
and ``fastrbm.evaluation.__all__``, the public functions of
``fastrbm.datasets``, ``fastrbm.io`` and ``fastrbm.plotting``,
``fastrbm.cli.main`` and ``fastrbm.cli.build_parser``, and the public methods
and properties that fastrbm's classes define or inherit from each other (not
those inherited from scikit-learn; a property named in the class's
Attributes section is documented there).  Checked without Sphinx or numpydoc (the docs build runs
numpydoc's own validation on top):

* a docstring with a summary line;
* a ``Parameters`` section naming every parameter of the signature (a class
  documents its ``__init__`` parameters; a dataclass may list its fields as
  Attributes), and no name that is not one;
* a ``Returns`` section when the code returns a value, ``Yields`` when it yields;
* only section titles that numpydoc knows;
* no plain-text word ending in ``_`` (``mean_``): reStructuredText reads it as
  a link to a target that does not exist, and the docs build fails.
"""
import ast
import dataclasses
import inspect
import re
import textwrap
import types

import pytest

import fastrbm
from fastrbm import cli, datasets, evaluation, io, plotting

# numpydoc's section titles (numpydoc.docscrape.NumpyDocString)
KNOWN_SECTIONS = {
    "Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Other Parameters",
    "Attributes", "Methods", "See Also", "Notes", "Warnings", "References", "Examples",
}
SECTION_RE = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*)\n-{3,}$", re.MULTILINE)


def _module_functions(module):
    return [obj for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(obj)
            and obj.__module__ == module.__name__]


def _module_classes(module):
    return [obj for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isclass(obj)
            and obj.__module__ == module.__name__]


def public_objects():
    """(qualified name, object) for everything the API reference shows."""
    tops = [getattr(fastrbm, name) for name in fastrbm.__all__
            if name not in ("__version__", "evaluation")]
    tops += [getattr(evaluation, name) for name in evaluation.__all__]
    for module in (datasets, io, plotting):
        tops += _module_functions(module)
    # the command line's Python entry points (its options: docs/cli.rst)
    tops += [cli.main, cli.build_parser]
    found = {}
    for obj in tops:
        found[f"{obj.__module__}.{obj.__qualname__}"] = obj
        if inspect.isclass(obj):
            for name in dir(obj):
                if name.startswith("_"):
                    continue
                raw = inspect.getattr_static(obj, name)
                target = raw.fget if isinstance(raw, property) else raw
                target = getattr(target, "__func__", target)
                if not isinstance(target, types.FunctionType):
                    continue
                if not target.__module__.startswith("fastrbm"):
                    continue  # inherited from scikit-learn: documented there
                if isinstance(raw, property) and name in _attribute_names(obj):
                    continue  # a fitted attribute: documented in the class's Attributes
                found[f"{obj.__module__}.{obj.__qualname__}.{name}"] = raw
    return sorted(found.items())


def _attribute_names(cls):
    parts, _ = sections(inspect.getdoc(cls) or "")
    return entry_names(parts.get("Attributes", ""))


def sections(doc):
    """{title: body} of a cleaned docstring; '' holds the summary and extended text."""
    parts = {}
    matches = list(SECTION_RE.finditer(doc))
    parts[""] = doc[:matches[0].start()] if matches else doc
    for match, following in zip(matches, matches[1:] + [None]):
        end = following.start() if following else len(doc)
        parts[match["title"]] = doc[match.end():end]
    return parts, [m["title"] for m in matches]


def entry_names(body):
    """Names listed in a Parameters-like section body (entries start at column 0)."""
    names = []
    for line in body.splitlines():
        if not line.strip() or line[0].isspace():
            continue
        head = line.split(" : ")[0].strip()
        names += [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
    return names


def signature_names(func):
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params]


def returns_or_yields(func):
    """('returns', 'yields') flags from the function's own body (nested defs excluded)."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False, False
    tree = ast.parse(source).body[0]
    returns = yields = False
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            returns = True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            yields = True
        stack.extend(ast.iter_child_nodes(node))
    return returns, yields


# a word ending in "_" is an rST hyperlink reference ("Unknown target name"
# in the docs build) unless it is inside ``literal`` or `role` markup
# (docutils: the "_" must be followed by whitespace, the end, or closing
# punctuation; literals and roles may span lines)
_REFERENCE_RE = re.compile(r"(?<![\w.])[A-Za-z]\w*_(?=[\s\-.,:;!?\\/'\")\]}>]|$)")
_MARKUP_RE = re.compile(r"``.*?``|:\w+:`[^`]*`|`[^`]*`_?", re.DOTALL)
_ENTRY_SECTIONS = {"Parameters", "Returns", "Yields", "Receives", "Raises", "Warns",
                   "Other Parameters", "Attributes", "Methods", "See Also"}


def stray_references(doc):
    """Plain-text words like ``mean_`` that reStructuredText reads as links."""
    found = []
    section = ""
    literal_indent = None
    # blank out markup first, keeping the line breaks inside it
    doc = _MARKUP_RE.sub(lambda m: "\n" * m.group().count("\n"), doc)
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() or indent > literal_indent:
                continue
            literal_indent = None
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()):
            section = line.strip()
            continue
        text = line.strip()
        if re.fullmatch(r"-{3,}", text) or text.startswith((">>>", "...")):
            continue
        if section in _ENTRY_SECTIONS and indent == 0:
            # "name : type": numpydoc reads the names itself, the type is rST text
            text = text.partition(" : ")[2]
        if text.endswith("::"):
            literal_indent = indent
        found += _REFERENCE_RE.findall(text.removesuffix("::"))
    return found


def problems_of(name, obj):
    """What is wrong with one object's docstring (an empty list if nothing)."""
    doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj)
    if not doc or not doc.strip():
        return ["no docstring"]
    out = []
    parts, titles = sections(doc)
    if not parts[""].strip():
        out.append("no summary line before the first section")
    for title in titles:
        if title not in KNOWN_SECTIONS:
            out.append(f"unknown section {title!r}")
    stray = stray_references(doc)
    if stray:
        out.append(f"plain-text {', '.join(stray)} would be rST link targets: "
                   "write ``name_``")
    if isinstance(obj, property):
        return out  # a property is documented like an attribute: summary only
    func = getattr(obj, "__func__", obj)
    if inspect.isclass(obj):
        # warnings and errors take the built-in exception arguments
        if obj.__init__ is object.__init__ or issubclass(obj, BaseException):
            return out
        func = obj.__init__
    wanted = signature_names(func)
    listed = entry_names(parts.get("Parameters", ""))
    if dataclasses.is_dataclass(obj) and "Parameters" not in parts:
        # a result record: its fields (the __init__ parameters) are its Attributes
        parts["Parameters"] = parts.get("Attributes", "")
        listed = entry_names(parts["Parameters"])
    if wanted and "Parameters" not in parts:
        out.append(f"no Parameters section (parameters: {', '.join(wanted)})")
    else:
        missing = [n for n in wanted if n not in listed]
        extra = [n for n in listed if n not in wanted]
        if missing:
            out.append(f"Parameters lacks {', '.join(missing)}")
        if extra:
            out.append(f"Parameters names {', '.join(extra)}, not in the signature")
    if not inspect.isclass(obj):
        returns, yields = returns_or_yields(func)
        if returns and "Returns" not in parts:
            out.append("returns a value but has no Returns section")
        if yields and "Yields" not in parts:
            out.append("yields but has no Yields section")
    return out


PUBLIC = public_objects()


def test_public_objects_found():
    names = dict(PUBLIC)
    # the collector sees classes, their inherited fastrbm methods and module functions
    for expected in ("fastrbm.rbm.BernoulliRBM.fit", "fastrbm.gaussian.GaussianBernoulliRBM.fit",
                     "fastrbm.dbn.DBNClassifier.predict_proba", "fastrbm.evaluation.log_likelihood",
                     "fastrbm.io.save_model", "fastrbm.plotting.plot_filters",
                     "fastrbm.datasets.load_mnist", "fastrbm.cli.build_parser"):
        assert expected in names, expected
    assert "fastrbm.rbm.BernoulliRBM.get_params" not in names  # scikit-learn's


@pytest.mark.parametrize("name, obj", PUBLIC, ids=[name for name, _ in PUBLIC])
def test_numpydoc_docstring(name, obj):
    problems = problems_of(name, obj)
    assert not problems, f"{name}: " + "; ".join(problems)


# The checker itself, on docstrings with known defects: each must be caught.

def _good(a, b=1):
    """Add.

    Parameters
    ----------
    a : int
        First.
    b : int, default=1
        Second.

    Returns
    -------
    total : int
    """
    return a + b


def _no_returns(a):
    """Double.

    Parameters
    ----------
    a : int
        The number.
    """
    return 2 * a


def _missing_param(a, b):
    """Nothing.

    Parameters
    ----------
    a : int
        Only one of the two.
    """


def _misspelt_section(a):
    """Nothing.

    Parameter
    ---------
    a : int
        The number.
    """


def _generator(n):
    """Count.

    Parameters
    ----------
    n : int
        How far.
    """
    yield from range(n)


def _nested_return_only(a):
    """Nothing returned here; the inner function's return does not count.

    Parameters
    ----------
    a : int
        Unused.
    """
    def inner():
        return 1


def _stray_reference(a):
    """Scale by ``scale_``, not by scale_.

    Parameters
    ----------
    a : ndarray of shape (n, n_features_in_)
        Entry names may be fitted attributes (numpydoc parses them), types not.
    components_ : ndarray
        Fine.
    """


@pytest.mark.parametrize("func, expected", [
    (_good, []),
    (_nested_return_only, []),
    (_no_returns, ["returns a value but has no Returns section"]),
    (_missing_param, ["Parameters lacks b"]),
    (_misspelt_section, ["unknown section 'Parameter'", "no Parameters section (parameters: a)"]),
    (_generator, ["yields but has no Yields section"]),
    (lambda x: x, ["no docstring"]),
    (_stray_reference, ["plain-text scale_, n_features_in_ would be rST link targets: "
                        "write ``name_``", "Parameters names components_, not in the signature"]),
])
def test_checker_catches_defects(func, expected):
    assert problems_of(func.__name__, func) == expected
