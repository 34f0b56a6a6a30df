"""``python -m tests.driver.journals [NAME…]``: record the journal fixtures again."""

import sys

from tests.driver.journals import main

main(sys.argv[1:])
