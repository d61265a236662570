import io

from os_onboard.cli.progress import ProgressBar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_on_a_terminal():
    stream = _Tty()
    bar = ProgressBar("discover", stream=stream, width=10)
    bar.update(1, 4, "qemu+ssh://hv1/system")
    bar.update(4, 4, "qemu+ssh://hv4/system")
    bar.close()
    out = stream.getvalue()
    assert "[##--------] 1/4" in out
    assert "[##########] 4/4" in out and "hv4" in out
    assert out.endswith("\n")


def test_nothing_is_drawn_into_a_pipe_or_file():
    stream = io.StringIO()
    bar = ProgressBar("discover", stream=stream)
    bar.update(1, 2)
    bar.close()
    assert stream.getvalue() == ""
