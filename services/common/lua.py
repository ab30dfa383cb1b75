"""Lua scripts shared by the api and the trainer."""

# Delete KEYS[1] only if it still holds ARGV[1] (a later writer's value is left alone).
CLEAR_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
