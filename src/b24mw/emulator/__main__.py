"""`python -m b24mw.emulator`: the emulator CLI without the main `b24mw` entry point."""

import typer

from b24mw.emulator.cli import emulator_command


def main() -> None:
    typer.run(emulator_command)


if __name__ == "__main__":
    main()
