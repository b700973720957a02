module example.com/hellotool

go 1.26
