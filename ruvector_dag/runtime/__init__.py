"""What runs inside the PostgreSQL server: start-up of the embedded interpreter
(:mod:`.embedded`), the SQL dispatcher (:mod:`.sqlapi`), the storage of learned
state (:mod:`.storage`) and the background worker (:mod:`.worker` and its parts).
"""
