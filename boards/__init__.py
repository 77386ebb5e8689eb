"""Board top-levels: clocks, hard IP, pins and constraints around the board-neutral cores."""
