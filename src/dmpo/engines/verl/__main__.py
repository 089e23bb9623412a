"""``python -m dmpo.engines.verl [HYDRA OVERRIDES]``: see :mod:`dmpo.engines.verl.launch`."""

from dmpo.engines.verl.launch import main

if __name__ == "__main__":
    main()
