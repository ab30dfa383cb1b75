"""The recommendation core shared by the api and the trainer: pure logic over plain arrays."""
