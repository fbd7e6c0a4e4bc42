module umntest

go 1.19
