"""The scan engine: inventory → collectors → checks → store, one portal at a time into the store."""
