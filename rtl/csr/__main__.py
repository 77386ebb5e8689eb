"""``python -m amnic.csr module:attribute --format {markdown,c,python}``: render a register
block description (see :func:`amnic.csr.export.main`)."""

import sys

from .export import main

sys.exit(main())
