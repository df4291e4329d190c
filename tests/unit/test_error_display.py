"""The error box: short, escaped, no run-to-run noise, the traceback folded; the kernel handler.

The remedies' texts are in test_remedies.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from egress_lib.error_display import ErrorBox, install, render
from egress_lib.errors import EgressError, NotApproved, PlanStale, StepFailed

ROOT = Path(__file__).resolve().parents[2]


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as a notebook cell sees it."""
    try:
        raise exc
    except BaseException as e:  # noqa: BLE001 - any exception is the point
        return e


# ---- the box ----------------------------------------------------------------------------------


def test_box_is_short_escaped_and_folds_the_traceback() -> None:
    def fail() -> BaseException:
        return raised(StepFailed("<b>bad</b> & worse\nsecond line", remedy="run `make it`"))

    first, second = render(fail()), render(fail())
    html = first._repr_html_()
    assert html == second._repr_html_()  # nothing in it varies between runs
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in html and "<b>bad</b>" not in html
    assert html.count("<details") == 1 and "<summary>Traceback</summary>" in html
    assert html.index("What to do") < html.index("<details")
    assert "<code>make it</code>" in html
    text = str(first)
    assert text.splitlines()[:3] == [
        "StepFailed: <b>bad</b> & worse",
        "  second line",
        "What to do: run `make it`",
    ]
    assert text.splitlines()[3] == "Traceback (most recent call last):"


def test_remedies_in_the_message_are_not_repeated() -> None:
    stale = str(render(raised(PlanStale("03-configure-snat", ["SnatEntry/vsw-1: gone"]))))
    assert stale.count("Plan again, review the new plan, then apply it.") == 2  # + traceback
    approve = NotApproved(
        "02 would make 2 change(s) but approve is false: nothing was changed. " + NotApproved.remedy
    )
    box = render(raised(approve))
    assert box.summary == "02 would make 2 change(s) but approve is false: nothing was changed."


def test_long_messages_are_cut_in_the_box_not_in_the_traceback() -> None:
    err = raised(StepFailed("head\n" + "\n".join(f"line {i}" for i in range(40))))
    box = render(err)
    assert len(box.details) == 16 and box.details[-1].startswith("… 25 more line(s)")
    assert "line 39" in box.traceback


def test_secrets_in_chained_exceptions_are_redacted() -> None:
    url = "/?AccessKeyId=LTAI5tSECRETID&SecurityToken=CAIStoken&Signature=abc"
    try:
        try:
            raise ConnectionError(f"Max retries exceeded with url: {url}")
        except ConnectionError as inner:
            raise StepFailed("no answer") from inner
    except StepFailed as e:
        box = render(e)
    for secret in ("LTAI5tSECRETID", "CAIStoken", "Signature=abc"):
        assert secret not in str(box) and secret not in box._repr_html_()


def test_other_exceptions_render_without_a_remedy() -> None:
    box = render(raised(ValueError("plain")))
    assert (box.kind, box.summary, box.remedy) == ("ValueError", "plain", "")
    assert "What to do" not in str(box)


def test_every_error_class_has_a_remedy() -> None:
    import egress_lib

    for name in egress_lib.__all__:
        member = getattr(egress_lib, name)
        if isinstance(member, type) and issubclass(member, EgressError):
            assert member.remedy.strip(), name


def test_per_instance_remedy_and_class_default() -> None:
    assert StepFailed("x").remedy == StepFailed.remedy
    assert StepFailed("x", remedy="do y").remedy == "do y"
    assert StepFailed.remedy.endswith("its plan shows what is already done.")


# ---- install() -------------------------------------------------------------------------------


class FakeShell:
    def __init__(self) -> None:
        self.custom_exceptions: tuple[type[BaseException], ...] = ()
        self.registered = 0
        self.shown: list[tuple[str, str, list[str]]] = []

    def set_custom_exc(self, exc_tuple: tuple[type[BaseException], ...], handler: Any) -> None:
        self.custom_exceptions = exc_tuple
        self.handler = handler
        self.registered += 1

    def _showtraceback(self, etype: type[BaseException], value: BaseException, stb: Any) -> None:
        self.shown.append((etype.__name__, str(value), stb))


def test_install_is_idempotent_and_leaves_other_handlers_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shell = FakeShell()
    assert install(shell) and install(shell)
    assert shell.registered == 1 and shell.custom_exceptions == (EgressError,)
    err = raised(StepFailed("boom", remedy="fix it"))
    stb = shell.handler(shell, StepFailed, err, err.__traceback__)
    assert stb == ["\x1b[0;31mStepFailed\x1b[0m: boom"]
    assert shell.shown == [("StepFailed", "boom", stb)]  # the cell still ends as an error
    assert "What to do: fix it" in capsys.readouterr().out  # display() outside a kernel
    other = FakeShell()
    other.custom_exceptions = (KeyError,)
    assert not install(other) and other.registered == 0


def test_importing_egress_lib_does_not_import_ipython() -> None:
    code = "import sys, egress_lib; sys.exit(int('IPython' in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0


@pytest.mark.slow
def test_in_a_kernel_the_box_shows_and_the_cell_still_fails() -> None:
    """A real kernel and nbclient: the box replaces the traceback; headless runs still fail."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    plain = nbformat.v4.new_code_cell("raise ValueError('plain error')")
    plain.metadata["tags"] = ["raises-exception"]  # nbclient goes on after this one
    nb.cells = [
        nbformat.v4.new_code_cell("import egress_lib\nfrom egress_lib.errors import StepFailed"),
        plain,
        nbformat.v4.new_code_cell("raise StepFailed('gateway is Failed', remedy='delete it')"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ]
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=60,
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    )
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "StepFailed" and info.value.evalue == "gateway is Failed"
    outputs = nb.cells[2].outputs
    assert [o.output_type for o in outputs] == ["display_data", "error"]
    shown = outputs[0].data
    assert 'class="egress-error"' in shown["text/html"] and "delete it" in shown["text/html"]
    assert "<summary>Traceback</summary>" in shown["text/html"]
    assert shown["text/plain"].startswith("StepFailed: gateway is Failed\nWhat to do: delete it")
    assert outputs[1].ename == "StepFailed" and len(outputs[1].traceback) == 1
    # Other exceptions keep IPython's own traceback.
    (plain_out,) = nb.cells[1].outputs
    assert plain_out.output_type == "error" and len(plain_out.traceback) > 1
    assert not nb.cells[3].outputs


def test_error_box_type_is_exported_for_annotations() -> None:
    assert isinstance(render(raised(StepFailed("x"))), ErrorBox)
