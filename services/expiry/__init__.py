"""The expiry service: fires every deadline the event history implies, on time.

Product rules 14, 16 and 20-23; see domain/timetable.py for what it follows.
"""
