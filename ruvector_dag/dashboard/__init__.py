"""The dashboard (issue 19, work in progress): ``ruvector-dag dashboard --dsn DSN``."""
