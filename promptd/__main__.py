from promptd.cli import main

if __name__ == "__main__":  # a builder process (spawn) imports this module too
    raise SystemExit(main())
