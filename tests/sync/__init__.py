"""SyncKoreClient and RichProgress tests."""
