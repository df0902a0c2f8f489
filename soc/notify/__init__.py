"""Notifications sent after scheduled work: the change e-mail after each scan (`soc.notify.mail`).

Engine layer: it builds and delivers messages; the services gather what to say and audit the delivery.
"""
