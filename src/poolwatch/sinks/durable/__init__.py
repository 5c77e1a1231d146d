"""What both HTTP sinks stand on: the sqlite queue, the delivery loop, HTTP answers and POST."""
