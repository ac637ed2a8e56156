"""``python -m kubesim``: the same CLI as the ``kubesim`` console script."""

from kubesim import cli

if __name__ == "__main__":
    cli.main()
